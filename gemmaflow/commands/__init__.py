"""One module per subcommand, each with `register(subparsers)`; `gemmaflow.cli` lists them."""
