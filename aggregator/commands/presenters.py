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
