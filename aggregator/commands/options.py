"""What every command shares: the `--config` option and loading the config it names (exit 2
with one line per problem, before any work)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aggregator.config import ConfigError, LoadedConfig, default_config_path, load_config

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        envvar="XMARGIN_CONFIG",
        help="Config file (default: $XMARGIN_CONFIG, else config/devnet.toml).",
        show_default=False,
    ),
]


def load_or_exit(config: Path | None) -> LoadedConfig:
    """The config at `config` (or the default); on a bad one, its problems and exit 2."""
    try:
        return load_config(config or default_config_path())
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
