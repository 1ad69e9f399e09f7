"""One module per ``python -m pipeline`` command, each with ``main(args) -> exit code``;
``pipeline/__main__.py`` parses the command line and calls the chosen one."""
