"""`python -m dunning` and the `dunning` command: one command, then the process ends with its exit code."""

import gc

from dunning.cli import main


def run() -> None:
    """Run the command line's command and end the process."""
    code = main()
    # The process ends here: its last collection need not visit every object it has loaded.
    gc.freeze()
    raise SystemExit(code)


if __name__ == "__main__":
    run()
