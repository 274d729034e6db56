"""The API's venue-view models: each venue account by its own rules, and what binds first
(design §7a; `aggregator.publish.venues` writes the documents they describe)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from aggregator.api.schemas.base import Model as _Model
from aggregator.api.schemas.base import dec as _dec
from aggregator.api.schemas.base import opt_dec as _opt_dec

VenueReason = Literal["no_debt", "unreachable", "parameters_unusable"]


class VenueReadPoint(_Model):
    height: int = Field(description="Block or slot the venue account was read at", examples=[42])
    block_hash: str = Field(description="Its hash", examples=["0x9f3c…"])
    block_time: str = Field(description="Its time (RFC 3339)", examples=["2026-12-01T12:00:00Z"])


class VenueLiquidationPrice(_Model):
    asset: str = Field(description="Asset symbol", examples=["WETH"])
    price_usd: str | None = _opt_dec("The venue's own price of the asset (its oracle)", "3000")
    liquidation_price_usd: str | None = _opt_dec(
        "Price of the asset at which the venue liquidates the account, all else fixed", "2121.2"
    )
    liquidation_price_usd_reason: VenueReason | None = Field(
        description="Why there is none (null when there is one)", examples=["unreachable"]
    )


class VenueView(_Model):
    """One venue account as that venue counts it (design §7a)."""

    venue: str = Field(description="The venue, as holdings name it", examples=["aave_v3:devnet"])
    rules: str = Field(
        description="Whose margin rules apply: aave_v3, drift, kamino, marginfi or hyperliquid",
        examples=["aave_v3"],
    )
    chain: str = Field(description="CAIP-2 chain id", examples=["eip155:31337"])
    account: str = Field(description="The wallet (CAIP-10)", examples=["eip155:31337:0xf39F…"])
    subaccount: str | None = Field(
        description="The venue's own account id, when not the wallet", examples=[None]
    )
    metric: str = Field(description="The venue's native metric", examples=["health_factor"])
    units: str = Field(
        description="What the metric means",
        examples=["ratio of threshold-weighted collateral to debt; the pool liquidates below 1"],
    )
    value: str | None = _opt_dec("The native metric, in its own units", "1.62")
    value_reason: VenueReason | None = Field(
        description="Why there is no value (null when there is one)", examples=["no_debt"]
    )
    status: Literal["healthy", "warning", "liquidatable", "unknown"] = Field(
        description="liquidatable when collateral_usd < requirement_usd by the venue's rules; "
        "warning under the service's warning level; unknown when its parameters are unusable"
    )
    collateral_usd: str | None = _opt_dec("Collateral as the venue weighs it", "4950")
    requirement_usd: str | None = _opt_dec("Requirement as the venue counts it", "3050")
    health_usd: str | None = _opt_dec(
        "collateral_usd − requirement_usd: the venue liquidates below 0", "1900"
    )
    liquidation_prices: list[VenueLiquidationPrice] = Field(
        description="Per asset of the account, at the venue's prices"
    )
    liquidation_shock: str | None = _opt_dec(
        "Smallest uniform relative move of the non-stable venue prices that liquidates it",
        "-0.38",
    )
    liquidation_shock_reason: VenueReason | None = Field(
        description="Why there is no such move", examples=["unreachable"]
    )
    problem: str | None = Field(
        description="Why the venue's parameters cannot be used (the line is then left out of "
        "binding)",
        examples=[None],
    )
    read_point: VenueReadPoint = Field(description="Where its parameters were read")
    figures: dict[str, str] = Field(
        description="Other figures the venue's rules give (decimal strings)",
        examples=[{"avg_liquidation_threshold": "0.825"}],
    )
    reported: dict[str, str] = Field(
        description="The venue's own numbers, as read (its units)",
        examples=[{"health_factor_wad": "1620000000000000000"}],
    )


class Binding(_Model):
    """The view nearest to liquidation: the unified status or one venue account."""

    view: Literal["unified", "venue"] = Field(description="Which kind of view binds")
    venue: str | None = Field(description="The venue (null for unified)", examples=["drift"])
    chain: str | None = Field(description="Its chain (CAIP-2)", examples=[None])
    account: str | None = Field(description="Its account (CAIP-10)", examples=[None])
    subaccount: str | None = Field(description="The venue's own account id", examples=[None])
    status: str = Field(description="That view's status now", examples=["healthy"])
    liquidation_shock: str = _dec(
        "The uniform relative move of the non-stable prices that liquidates it (0: already)",
        "-0.31",
    )
