"""`xmargin keys`: operator API keys for front-end back ends.

`create NAME --scope read|link|admin [--rate-per-minute N]` prints the key once (it is stored
only as a hash); `revoke NAME` stops it working at once; `list` shows names, scopes, limits
and states, never a key or a hash.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

import typer

from aggregator.auth.api_keys import SCOPES, Scope, parse_scope
from aggregator.commands.options import ConfigOption, load_or_exit
from aggregator.config import LoadedConfig
from aggregator.errors import UserInputError, XmarginError
from aggregator.store.accounts import auth as auth_repo
from aggregator.store.accounts.auth import ApiKeyRow

keys_app = typer.Typer(no_args_is_help=True, add_completion=False)


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


async def _create(
    config: LoadedConfig, name: str, scope: Scope, rate: int | None
) -> tuple[ApiKeyRow, str]:
    from aggregator.bootstrap import open_services  # lazily: it imports every chain adapter

    async with open_services(config, with_adapters=False) as services:
        async with services.database.session() as session:
            return await auth_repo.create_api_key(session, name, scope, rate)


async def _revoke(config: LoadedConfig, name: str) -> ApiKeyRow:
    from aggregator.bootstrap import open_services  # lazily: it imports every chain adapter

    async with open_services(config, with_adapters=False) as services:
        async with services.database.session() as session:
            return await auth_repo.revoke_api_key(session, name)


async def _list(config: LoadedConfig) -> list[ApiKeyRow]:
    from aggregator.bootstrap import open_services  # lazily: it imports every chain adapter

    async with open_services(config, with_adapters=False) as services:
        async with services.database.session() as session:
            return await auth_repo.list_api_keys(session)


def describe_key(row: ApiKeyRow, default_rate: int) -> str:
    """One `list` line: name, public id, scope, limit, state and dates (no key, no hash)."""
    rate = f"{row.rate_per_minute}/min" if row.rate_per_minute else f"{default_rate}/min (default)"
    state = "active" if row.revoked_at is None else f"revoked {_utc(row.revoked_at)}"
    return (
        f"{row.name}\t{row.public_id}\t{row.scope}\t{rate}\t{state}\tcreated {_utc(row.created_at)}"
    )


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@keys_app.callback()
def keys() -> None:
    """Operator API keys (hashed at rest, scoped, rate-limited)."""


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="A unique name for the key, e.g. frontend-prod.")],
    scope: Annotated[
        str, typer.Option("--scope", help=f"One of {', '.join(SCOPES)} (each includes the last).")
    ],
    rate_per_minute: Annotated[
        int | None,
        typer.Option("--rate-per-minute", min=1, help="Its own limit (default: [auth])."),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Create a key and print it once: it is stored only as a hash."""
    cfg = load_or_exit(config)
    try:
        chosen = parse_scope(scope)
        row, key = asyncio.run(_create(cfg, name, chosen, rate_per_minute))
    except (UserInputError, ValueError) as exc:
        raise _fail(str(exc), 2) from None
    except XmarginError as exc:
        raise _fail(str(exc), 1) from None
    typer.echo(key)
    typer.echo(
        f"created API key {row.name} ({row.scope}); it is shown only now: store it safely",
        err=True,
    )


@keys_app.command("revoke")
def revoke(
    name: Annotated[str, typer.Argument(help="The key's name.")], config: ConfigOption = None
) -> None:
    """Revoke a key: requests with it are refused from now on."""
    cfg = load_or_exit(config)
    try:
        row = asyncio.run(_revoke(cfg, name))
    except UserInputError as exc:
        raise _fail(str(exc), 2) from None
    except XmarginError as exc:
        raise _fail(str(exc), 1) from None
    typer.echo(f"revoked API key {row.name}")


@keys_app.command("list")
def list_keys(config: ConfigOption = None) -> None:
    """List keys: name, public id, scope, rate limit, state (never the key or its hash)."""
    cfg = load_or_exit(config)
    try:
        rows = asyncio.run(_list(cfg))
    except XmarginError as exc:
        raise _fail(str(exc), 1) from None
    for row in rows:
        typer.echo(describe_key(row, cfg.auth.rate_per_minute))
