"""The `xmargin` command line: thin wrappers over bootstrap and the services it wires.

Exit codes: 0 ok; 1 runtime failure (database or chain unreachable); 2 bad input (config,
arguments, addresses); 3 `cycle` finished but at least one chain failed to poll.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Coroutine
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from aggregator.addresses import AddressError
from aggregator.commands.alerts import alerts_app
from aggregator.commands.keys import keys_app
from aggregator.commands.options import ConfigOption, load_or_exit
from aggregator.commands.risk import risk_app
from aggregator.config import LoadedConfig
from aggregator.errors import UserInputError, XmarginError

app = typer.Typer(
    name="xmargin",
    help="Cross-chain collateral aggregation: poll chains, value collateral, publish margin.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Validate configuration files.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
users_app = typer.Typer(help="Users (operator commands).", no_args_is_help=True)
wallets_app = typer.Typer(help="Wallets linked to users (operator commands).", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(wallets_app, name="wallets")
app.add_typer(risk_app, name="risk", help="Risk math without chains or a database.")
app.add_typer(keys_app, name="keys", help="Operator API keys (hashed, scoped, rate-limited).")
app.add_typer(alerts_app, name="alerts", help="Alert webhooks: send a test event.")


class LogFormat(StrEnum):
    text = "text"
    json = "json"


class StatusName(StrEnum):
    healthy = "healthy"
    warning = "warning"
    margin_call = "margin_call"
    liquidatable = "liquidatable"


LogFormatOption = Annotated[
    LogFormat,
    typer.Option(
        "--log-format",
        envvar="XMARGIN_LOG_FORMAT",
        help="Logs on stderr: text, or json (one object per line: time, level, logger, "
        "message, chain/block/endpoint/user fields). Secrets are always blanked.",
    ),
]

T = TypeVar("T")


def _configure_logs(cfg: LoadedConfig, log_format: LogFormat, *, quiet_text: bool = False) -> None:
    """Logging for a long or cron command; `quiet_text`: text logs at WARNING only (the
    command prints its own report on stdout)."""
    import logging

    from aggregator.ops.logs import configure_logging, secrets_of

    json_logs = log_format is LogFormat.json
    level = logging.WARNING if quiet_text and not json_logs else logging.INFO
    configure_logging("json" if json_logs else "text", secrets=secrets_of(cfg), level=level)


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(code)


def _run(coro_factory: Callable[[], Coroutine[Any, Any, T]], *, server: bool = False) -> T:
    """Run an async command, turning known errors into one line and an exit code. Servers
    (`api`, `run`, `demo`) run on uvloop."""
    try:
        if server:
            import uvloop

            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                return runner.run(coro_factory())
        return asyncio.run(coro_factory())
    except (UserInputError, AddressError) as exc:
        _fail(f"error: {exc}", 2)
    except XmarginError as exc:
        _fail(f"error: {exc}", 1)
    except KeyboardInterrupt:
        _fail("interrupted", 130)


@config_app.command("check")
def config_check(path: Annotated[Path, typer.Argument(help="The config file to check.")]) -> None:
    """Print `ok`, or one line per problem naming the file and the key (exit 2)."""
    load_or_exit(path)
    typer.echo("ok")


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None) -> None:
    """Bring the database to the newest schema (Alembic `upgrade head`)."""
    from aggregator import bootstrap

    load_or_exit(config)
    url = _run(bootstrap.prepare_database)
    typer.echo(f"database at head: {bootstrap.masked(url)}")


@users_app.command("add")
def users_add(name: str, config: ConfigOption = None) -> None:
    """Create a user."""
    from aggregator.commands import operator

    cfg = load_or_exit(config)
    user_id = _run(lambda: operator.add_user(cfg, name))
    typer.echo(f"user {name} added (id {user_id})")


@users_app.command("list")
def users_list(
    status: Annotated[
        list[StatusName] | None,
        typer.Option(
            "--status",
            help="Only users whose latest status is this (repeatable), nearest to liquidation "
            "first (lowest health factor, then lowest maintenance health in USD).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array.")] = False,
    config: ConfigOption = None,
) -> None:
    """List users and their wallets, or (with --status) the accounts needing attention."""
    from aggregator.commands import operator

    cfg = load_or_exit(config)
    if status or as_json:
        wanted = [s.value for s in status] if status else None
        rows = _run(lambda: operator.users_by_status(cfg, wanted))
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
        else:
            for line in operator.attention_lines(rows):
                typer.echo(line)
        return
    for line in _run(lambda: operator.list_users(cfg)):
        typer.echo(line)


@wallets_app.command("link")
def wallets_link(
    user: Annotated[str, typer.Argument(help="User name or id.")],
    chain: Annotated[str, typer.Argument(help="Chain key from the config, e.g. ethereum.")],
    address: Annotated[str, typer.Argument(help="EVM (EIP-55) or Solana (base58) address.")],
    config: ConfigOption = None,
) -> None:
    """Link a wallet to a user (operator path; front ends use the signed-proof API)."""
    from aggregator.commands import operator

    cfg = load_or_exit(config)
    account = _run(lambda: operator.link_wallet(cfg, user, chain, address))
    typer.echo(f"linked {account} to {user}")


@app.command()
def cycle(config: ConfigOption = None, log_format: LogFormatOption = LogFormat.text) -> None:
    """Poll every configured chain once, publish statuses, exit (the entry for cron).

    Exit 0 when every chain was read, 3 when some chain failed (its last good data stays,
    marked stale, and statuses were still published).
    """
    from aggregator import bootstrap

    cfg = load_or_exit(config)
    _configure_logs(cfg, log_format, quiet_text=True)
    report = _run(lambda: bootstrap.run_cycle(cfg))
    if log_format is LogFormat.json:
        from aggregator.ops.observability import log_cycle

        log_cycle(report)
    else:
        for line in report.lines():
            typer.echo(line)
    raise typer.Exit(0 if report.all_ok else 3)


@app.command()
def status(
    user: Annotated[str, typer.Argument(help="User name or id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the status document.")] = False,
    risk_input: Annotated[
        bool,
        typer.Option(
            "--input", help="Print the exact `risk evaluate` input the status was valued from."
        ),
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Print a user's latest published margin status, with its venue lines (each venue
    account by its own rules) and which view binds first."""
    from aggregator.commands import operator
    from aggregator.commands.presenters import make_console, status_table, venue_table

    cfg = load_or_exit(config)
    document = _run(lambda: operator.user_status(cfg, user, risk_input=risk_input))
    if as_json or risk_input:
        typer.echo(json.dumps(document, indent=2))
    else:
        console = make_console()
        status_table([document], console)
        venue_table([document], console)


HostOption = Annotated[
    str | None, typer.Option("--host", help="Address to listen on (default: [api] host).")
]
PortOption = Annotated[
    int | None,
    typer.Option("--port", min=0, max=65535, help="Port (default: [api] port; 0: a free one)."),
]


@app.command()
def api(
    host: HostOption = None,
    port: PortOption = None,
    config: ConfigOption = None,
    log_format: LogFormatOption = LogFormat.text,
) -> None:
    """Serve the HTTP API alone (reads what the daemon or cron publishes)."""
    from aggregator import bootstrap

    cfg = load_or_exit(config)
    _configure_logs(cfg, log_format)
    _run(lambda: bootstrap.serve_api(cfg, host, port), server=True)


@app.command()
def run(
    no_api: Annotated[bool, typer.Option("--no-api", help="Do not serve the HTTP API.")] = False,
    host: HostOption = None,
    port: PortOption = None,
    config: ConfigOption = None,
    log_format: LogFormatOption = LogFormat.text,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            min=0,
            max=65535,
            help="Also serve the daemon's metrics at /metrics on this port (with or without "
            "the API; 0: a free one).",
        ),
    ] = None,
    metrics_host: Annotated[
        str, typer.Option("--metrics-host", help="Address of the metrics port.")
    ] = "127.0.0.1",
) -> None:
    """Run the daemon: one poll job per chain at its interval, one publish job, alert
    delivery when webhooks are configured, and the HTTP API beside them."""
    from aggregator import scheduler

    cfg = load_or_exit(config)
    _configure_logs(cfg, log_format)
    _run(
        lambda: scheduler.run_forever(
            cfg,
            api=not no_api,
            host=host,
            port=port,
            metrics_port=metrics_port,
            metrics_host=metrics_host,
        ),
        server=True,
    )


@app.command()
def worker(
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, max=256, help="Jobs run at once.")
    ] = 4,
    config: ConfigOption = None,
    log_format: LogFormatOption = LogFormat.text,
) -> None:
    """Run work-queue jobs (polls, publish shards, alerts, pruning) until SIGTERM/SIGINT;
    running jobs finish first. Start as many as you like, on any machine."""
    from aggregator.work import worker as work

    cfg = load_or_exit(config)
    _configure_logs(cfg, log_format)
    _run(lambda: work.run_worker(cfg, concurrency))


@app.command()
def dispatch(config: ConfigOption = None, log_format: LogFormatOption = LogFormat.text) -> None:
    """Defer one round of work-queue jobs: a poll per chain and a publish pass (for cron;
    what is still queued from an earlier round is not deferred again)."""
    from aggregator.work import worker as work

    cfg = load_or_exit(config)
    _configure_logs(cfg, log_format, quiet_text=True)
    report = _run(lambda: work.run_dispatch(cfg))
    for line in report.lines():
        typer.echo(line)


@app.command()
def demo(
    once: Annotated[bool, typer.Option("--once", help="One cycle, print, stop, exit.")] = False,
    host: HostOption = None,
    port: PortOption = None,
    config: ConfigOption = None,
) -> None:
    """Start local chains, seed demo users, run cycles and print their statuses; the HTTP API
    and its status page are served meanwhile (the URL is printed)."""
    import aggregator.demo as demo_module

    cfg = load_or_exit(config)
    _run(lambda: demo_module.run_demo(cfg, once=once, host=host, port=port), server=True)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except BrokenPipeError:
        sys.stderr.close()


if __name__ == "__main__":
    main()
