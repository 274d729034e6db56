"""The venue worked examples of docs/risk.md ("Venue view"), computed by the venues' own rules:
each figure the document states is what the code gives, and the document states it."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from aggregator.venues.assess import ReadPoint, VenueLine, assess
from chains.base import Address, VenueAccount, VenueAsset

DOC = (Path(__file__).resolve().parents[3] / "docs" / "risk.md").read_text()
WALLET = Address("wallet")
POINT = ReadPoint(1, "0x00", "2026-01-01T00:00:00Z")
STABLE = frozenset({"USDC", "USDT"})
AAVE = {
    "ltv_bps": "8000",
    "liquidation_threshold_bps": "8250",
    "liquidation_bonus_bps": "10500",
    "usage_as_collateral": "true",
}
KAMINO = {"borrow_factor": "1"}
DRIFT_SPOT = {"maintenance_liability_weight": "1", "imf_factor": "0", "open_orders": "0"}


def _line(account: VenueAccount) -> VenueLine:
    return assess(account, "chain", "wallet", POINT, stable=STABLE, warning_at=Decimal("1.1"))


def _close(value: Decimal | None, expected: str, tolerance: str = "1e-9") -> bool:
    return value is not None and abs(value - Decimal(expected)) < Decimal(tolerance)


def test_aave() -> None:
    usdc = {**AAVE, "ltv_bps": "7500", "liquidation_threshold_bps": "7800"}
    line = _line(
        VenueAccount(
            WALLET,
            "aave_v3:core",
            "aave_v3",
            (
                VenueAsset("WETH", 10 * 10**18, 18, Decimal(3000), AAVE),
                VenueAsset("USDC", -24_000 * 10**6, 6, Decimal(1), usdc),
            ),
            {"base_unit": "100000000", "revision": "v3-core"},
        )
    )
    assert line.value == Decimal("1.03125") and line.extra["health_factor_wad"] == str(
        1_031_250_000_000_000_000
    )
    assert _close(line.liquidation_prices["WETH"], "2909.090909", "1e-6")
    assert _close(line.liquidation_shock, str(Decimal(24000) / Decimal(24750) - 1))
    for figure in ("**1.03125**", "1031250000000000000", "**2909.0909…**", "**−0.030303…**"):
        assert figure in DOC


def test_drift() -> None:
    line = _line(
        VenueAccount(
            WALLET,
            "drift",
            "drift",
            (
                VenueAsset(
                    "SOL",
                    100 * 10**9,
                    9,
                    Decimal(150),
                    {**DRIFT_SPOT, "maintenance_asset_weight": "0.9"},
                    "spot:1",
                ),
                VenueAsset(
                    "USDC",
                    -5_000 * 10**6,
                    6,
                    Decimal(1),
                    {**DRIFT_SPOT, "maintenance_asset_weight": "1"},
                    "spot:0",
                ),
                VenueAsset(
                    "SOL-PERP",
                    10 * 10**9,
                    9,
                    Decimal(150),
                    {
                        "maintenance_margin_ratio": "0.03",
                        "imf_factor": "0",
                        "unrealized_pnl_maintenance_asset_weight": "1",
                        "quote_asset_amount": "-1400",
                        "open_orders": "0",
                    },
                    "perp:0",
                ),
            ),
            {"sub_account_id": "0"},
        )
    )
    assert (line.collateral, line.requirement) == (Decimal(13600), Decimal(5045))
    assert _close(line.value, str(100 * (1 - Decimal(5045) / Decimal(13600))))
    assert line.extra["health_rounded"] == "63"
    # 100 p 0.9 + (10 x 150 - 1400) = 5000 + 10 x 150 x 0.03, the perp held at 150
    assert _close(line.liquidation_prices["SOL"], str(Decimal(4945) / 90))
    for figure in ("**62.904…**", "**54.944…**"):
        assert figure in DOC


def test_kamino() -> None:
    line = _line(
        VenueAccount(
            WALLET,
            "kamino:main",
            "kamino",
            (
                VenueAsset(
                    "SOL",
                    10 * 10**9,
                    9,
                    Decimal("191.32"),
                    {
                        "loan_to_value": "0.74",
                        "liquidation_threshold": "0.75",
                        "borrow_factor": "1",
                    },
                ),
                VenueAsset(
                    "USDC",
                    -1_000 * 10**6,
                    6,
                    Decimal(1),
                    {**KAMINO, "loan_to_value": "0.8", "liquidation_threshold": "0.85"},
                ),
            ),
            {"elevation_group": "0"},
        )
    )
    assert _close(line.value, str(Decimal(1000) / Decimal("1913.2")))
    assert line.extra["liquidation_ltv"] == "0.75"
    assert _close(line.liquidation_prices["SOL"], str(Decimal(1000) / Decimal("7.5")))
    for figure in ("**0.52268…**", "**0.75**", "**133.33…**"):
        assert figure in DOC


def test_marginfi() -> None:
    weights = {"price_conf_interval": "0", "isolated": "0"}
    line = _line(
        VenueAccount(
            WALLET,
            "marginfi",
            "marginfi",
            (
                VenueAsset(
                    "JitoSOL",
                    10 * 10**9,
                    9,
                    Decimal(200),
                    {**weights, "asset_weight_maint": "0.8", "liability_weight_maint": "1.25"},
                ),
                VenueAsset(
                    "USDT",
                    -500 * 10**6,
                    6,
                    Decimal(1),
                    {**weights, "asset_weight_maint": "0.9", "liability_weight_maint": "1.1"},
                ),
            ),
        )
    )
    assert (line.collateral, line.requirement) == (Decimal(1600), Decimal(550))
    assert line.value == Decimal("0.65625")
    assert _close(line.liquidation_prices["JitoSOL"], "68.75")
    for figure in ("**0.65625**", "**68.75**"):
        assert figure in DOC


def test_hyperliquid() -> None:
    line = _line(
        VenueAccount(
            WALLET,
            "hyperliquid",
            "hyperliquid",
            (
                VenueAsset(
                    "ETH",
                    10 * 10**4,
                    4,
                    Decimal(3000),
                    {
                        "leverage_type": "cross",
                        "margin_tiers": "1",
                        "margin_tier.0.lower_bound": "0",
                        "margin_tier.0.max_leverage": "25",
                    },
                    "ETH",
                ),
            ),
            {"cross_total_raw_usd": "-25000"},
        )
    )
    assert (line.collateral, line.requirement) == (Decimal(5000), Decimal(600))
    assert _close(line.value, str(Decimal(5000) / Decimal(600)))
    expected = Decimal(3000) - Decimal(4400) / 10 / Decimal("0.98")
    assert _close(line.liquidation_prices["ETH"], str(expected))
    assert line.extra["liquidation_px:ETH"].startswith("2551.0204")
    assert _close(line.liquidation_shock, str(expected / 3000 - 1))
    for figure in ("**8.333…**", "**2551.0204…**", "**−0.14966…**"):
        assert figure in DOC
