"""`xmargin alerts test [--webhook NAME]`: queue a signed `test` event for each configured
webhook (or the one named) and post it at once, printing what each receiver answered.

Exit 0 when every test event was acknowledged (2xx), 1 when one was not (it stays in the
outbox and the deliverer retries it like any event), 2 for an unknown webhook or no webhooks.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from aggregator.alerts.deliver import DeliveryReport
from aggregator.commands.options import ConfigOption, load_or_exit
from aggregator.config import LoadedConfig
from aggregator.errors import XmarginError

alerts_app = typer.Typer(no_args_is_help=True, add_completion=False)


async def send_test_events(config: LoadedConfig, names: list[str]) -> DeliveryReport:
    """Queue one `test` event per webhook of `names` and attempt each once, now.

    May raise: XmarginError (database).
    """
    from aggregator.alerts.deliver import Deliverer
    from aggregator.alerts.outbox import enqueue_test_event
    from aggregator.bootstrap import open_services  # lazily: it imports every chain adapter

    async with open_services(config, with_adapters=False) as services:
        async with services.database.session() as session:
            ids = [
                await enqueue_test_event(session, webhook)
                for webhook in config.alerts.webhooks
                if webhook.name in names
            ]
        deliverer = Deliverer(services.database, config.alerts)
        try:
            return await deliverer.deliver_due(only_ids=ids)
        finally:
            await deliverer.aclose()


@alerts_app.command("test")
def alerts_test(
    webhook: Annotated[
        str | None, typer.Option("--webhook", help="Only this webhook (default: every one).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Send a signed test event to the configured webhooks and print what they answered."""
    cfg = load_or_exit(config)
    known = [w.name for w in cfg.alerts.webhooks]
    if not known:
        typer.echo(f"error: {cfg.path}: alerts.webhooks: no webhook is configured", err=True)
        raise typer.Exit(2)
    if webhook is not None and webhook not in known:
        typer.echo(
            f"error: unknown webhook {webhook!r} in {cfg.path} (known: {', '.join(known)})",
            err=True,
        )
        raise typer.Exit(2)
    try:
        report = asyncio.run(send_test_events(cfg, [webhook] if webhook else known))
    except XmarginError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    for outcome in report.outcomes:
        typer.echo(outcome.describe())
    raise typer.Exit(0 if report.outcomes and report.failed == 0 else 1)
