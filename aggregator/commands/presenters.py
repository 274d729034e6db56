"""Terminal rendering of status documents (rich tables)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

STATUS_STYLE = {
    "healthy": "green",
    "warning": "yellow",
    "margin_call": "bold yellow",
    "liquidatable": "bold red",
}


def _short(value: Any, places: int = 2) -> str:
    """A decimal string rounded for display; '-' for null."""
    if value is None:
        return "-"
    text = str(value)
    head, dot, tail = text.partition(".")
    return head + (dot + tail[:places] if dot and places else "")


def make_console() -> Console:
    """A console for tables; piped output has no terminal width to follow, so it gets room
    for the whole table instead of 80 columns."""
    return Console(width=None if sys.stdout.isatty() else 200)


def status_table(documents: Sequence[dict[str, Any]], console: Console | None = None) -> None:
    """Print one row per user: status, equity, collateral, requirements, health factor, chains."""
    console = console or make_console()
    table = Table(title="xmargin: cross-chain margin status", show_lines=False)
    for column in (
        "user",
        "status",
        "equity $",
        "wc init $",
        "req init $",
        "wc maint $",
        "req maint $",
        "health factor",
        "free $",
        "stale",
        "chains @ height",
    ):
        table.add_column(column, justify="right" if "$" in column else "left")
    for doc in documents:
        status = str(doc.get("status"))
        style = STATUS_STYLE.get(status, "")
        heads = ", ".join(
            f"{info.get('chain')}@{info.get('height')}" for info in doc.get("chains", {}).values()
        )
        table.add_row(
            str(doc.get("user")),
            f"[{style}]{status}[/]" if style else status,
            _short(doc.get("equity")),
            _short(doc.get("weighted_collateral", {}).get("init")),
            _short(doc.get("requirement", {}).get("init")),
            _short(doc.get("weighted_collateral", {}).get("maint")),
            _short(doc.get("requirement", {}).get("maint")),
            _short(doc.get("health_factor"), 3),
            _short(doc.get("free_collateral")),
            ", ".join(doc.get("stale_chains", [])) or ("yes" if doc.get("stale") else "no"),
            heads,
        )
    console.print(table)


VENUE_STYLE = {**STATUS_STYLE, "unknown": "dim"}


def venue_table(documents: Sequence[dict[str, Any]], console: Console | None = None) -> None:
    """Print each status's venue lines (each venue account by its own venue's rules) and, per
    user, which view binds first. Nothing when no status has a venue account."""
    if not any(doc.get("venues") for doc in documents):
        return
    console = console or make_console()
    table = Table(title="venues: each account by its own venue's rules", show_lines=False)
    for column in (
        "user",
        "venue",
        "chain",
        "metric",
        "value",
        "status",
        "collateral $",
        "requirement $",
        "liq. shock",
        "problem",
    ):
        table.add_column(column, justify="right" if "$" in column else "left")
    for doc in documents:
        for venue in doc.get("venues") or []:
            status = str(venue.get("status"))
            style = VENUE_STYLE.get(status, "")
            shock = venue.get("liquidation_shock")
            table.add_row(
                str(doc.get("user")),
                str(venue.get("venue")),
                str(venue.get("chain")),
                str(venue.get("metric")),
                _short(venue.get("value"), 4),
                f"[{style}]{status}[/]" if style else status,
                _short(venue.get("collateral_usd")),
                _short(venue.get("requirement_usd")),
                "-" if shock is None else _short(shock, 4),
                str(venue.get("problem") or ""),
            )
    console.print(table)
    for doc in documents:
        console.print(f"{doc.get('user')}: binding {binding_text(doc)}")


def binding_text(document: dict[str, Any]) -> str:
    """What binds first, in words."""
    binding = document.get("binding")
    if binding is None:
        return "none (no uniform price move liquidates any view)"
    shock = _short(binding.get("liquidation_shock"), 4)
    if binding.get("view") == "unified":
        return f"the unified view, at a uniform shock of {shock}"
    return f"{binding.get('venue')} on {binding.get('chain')}, at a uniform shock of {shock}"
