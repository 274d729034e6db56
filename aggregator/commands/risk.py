"""`xmargin risk`: the risk engine without a chain or a database.

`xmargin risk evaluate FILE` (`-` for stdin) reads a portfolio document, prints one JSON
status and exits 0; a bad document exits 2 with one line naming the field.
"""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer

from aggregator.config import ConfigError, load_config
from aggregator.margin import evaluate as evaluate_portfolio
from aggregator.publish.portfolios import risk_params
from aggregator.risk.document import PortfolioError, parse_portfolio
from aggregator.risk.output import result_to_json

risk_app = typer.Typer(no_args_is_help=True, add_completion=False)

BAD_INPUT = 2


@risk_app.callback()
def risk() -> None:
    """Evaluate margin risk from a portfolio document (no chain, no database)."""


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(BAD_INPUT)


def _read(source: str) -> str:
    if source == "-":
        return sys.stdin.read()
    try:
        return Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise _fail(f"{source}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise _fail(f"{source}: not UTF-8 text") from None


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not a number JSON allows")


@risk_app.command()
def evaluate(
    file: Annotated[str, typer.Argument(help="Portfolio JSON document, or - for stdin.")],
    compact: Annotated[bool, typer.Option(help="Print the status on one line.")] = False,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            envvar="XMARGIN_CONFIG",
            help="Take the params the document leaves out from this config's [risk] table "
            "(default: design §5's values).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Print the margin status of a portfolio document as JSON.

    Input format: config/portfolio.schema.json (docs/risk.md has a worked example).
    """
    defaults = None
    if config is not None:
        try:
            defaults = risk_params(load_config(config))
        except ConfigError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(BAD_INPUT) from None
    text = _read(file)
    try:
        doc = json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)
    except (json.JSONDecodeError, ValueError) as exc:
        raise _fail(f"input: not valid JSON ({exc})") from None
    try:
        portfolio = parse_portfolio(doc, defaults)
    except PortfolioError as exc:
        raise _fail(str(exc)) from None
    status = result_to_json(evaluate_portfolio(portfolio))
    typer.echo(json.dumps(status, indent=None if compact else 2))


if __name__ == "__main__":
    risk_app()
