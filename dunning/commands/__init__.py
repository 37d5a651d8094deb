"""One module per subcommand: NAME, HELP, configure(parser) and run(args) -> exit code."""
