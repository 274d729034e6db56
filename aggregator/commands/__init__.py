"""Sub-commands of the `xmargin` CLI, one Typer app per resource (mounted in aggregator/cli.py)."""
