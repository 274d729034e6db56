"""Venue kind (`VenueAccount.rules`) → its rules module (`aggregator.venues.model.VenueRules`).

Modules are imported on first use, so a venue's math costs nothing where it is not held.
"""

from __future__ import annotations

import importlib
from functools import cache

from aggregator.venues.model import VenueRules

MODULES = {
    "aave_v3": "aggregator.venues.aave_rules",
    "drift": "aggregator.venues.drift",
    "kamino": "aggregator.venues.kamino",
    "marginfi": "aggregator.venues.marginfi",
    "hyperliquid": "aggregator.venues.hyperliquid_rules",
}


@cache
def rules_for(kind: str) -> VenueRules | None:
    """The rules of venue kind `kind`, None for a kind not known here."""
    module = MODULES.get(kind)
    if module is None:
        return None
    rules: VenueRules = importlib.import_module(module).RULES
    return rules
