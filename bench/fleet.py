"""`python -m bench.fleet`: one planner and N `dunning deliver` services on one PostgreSQL outbox, measured as one.

The deliverers start first and poll, as services do; the planner (`dunning run --no-deliver`) enqueues
while they send. Once the planner is done and the outbox holds nothing to send or being sent, each
deliverer gets SIGTERM and stops after its batch in hand. Prints one JSON object: the planner's
summary with `sent` replaced by the deliverers' total, and each deliverer's count.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time

POLL_SECONDS = 0.2
PENDING = ("queued", "sending", "retry")


def dunning(*args: str) -> list[str]:
    return [sys.executable, "-m", "dunning", *args]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet", description=__doc__.splitlines()[0])
    parser.add_argument("--deliverers", type=int, default=2)
    parser.add_argument("--as-of", required=True)
    parser.add_argument("--database", required=True, help="the PostgreSQL URL (also DUNNING_DATABASE__URL)")
    args = parser.parse_args(argv)
    deliverers = [subprocess.Popen(dunning("deliver", "--forever", "--json", "--poll-seconds", str(POLL_SECONDS)),
                                   stdout=subprocess.PIPE, text=True) for _ in range(args.deliverers)]
    planner = subprocess.run(dunning("run", "--no-deliver", "--json", "--as-of", args.as_of),
                             stdout=subprocess.PIPE, text=True)
    if planner.returncode == 0:
        wait_until_drained(args.database)
    for process in deliverers:
        process.send_signal(signal.SIGTERM)
    outputs = [process.communicate()[0] for process in deliverers]
    if planner.returncode != 0 or any(process.returncode != 0 for process in deliverers):
        print(f"planner exited {planner.returncode}, deliverers {[p.returncode for p in deliverers]}",
              file=sys.stderr)
        return 1
    summary = json.loads(planner.stdout.strip().splitlines()[-1])
    counts = [json.loads(out.strip().splitlines()[-1]) for out in outputs]
    for name in ("sent", "retried", "failed", "unknown"):
        summary[name] = sum(count[name] for count in counts)
    summary["sent_by_each"] = [count["sent"] for count in counts]
    print(json.dumps(summary))
    return 0


def wait_until_drained(url: str) -> None:
    """Return once the outbox holds no email queued, being sent or waiting for a retry."""
    from dunning import ledger, store

    engine = store.connect(url, migrate=False)
    while sum(ledger.summary(engine)[status] for status in PENDING):
        time.sleep(POLL_SECONDS)
    engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
