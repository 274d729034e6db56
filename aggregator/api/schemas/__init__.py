"""Request and response models: the OpenAPI contract front ends code against.

Money, prices and ratios are decimal strings in human units (floats cannot round-trip
18-decimal amounts); USD fields end in `_usd`; chains are CAIP-2 and accounts CAIP-10 ids;
times RFC 3339. A number that does not exist is `null` with a sibling `*_reason`.
Responses are rendered by `aggregator.api.reads.views`; these models document them (a test checks
that every rendered status validates against `MarginStatus`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from aggregator.api.schemas.base import Model as _Model
from aggregator.api.schemas.base import dec as _dec
from aggregator.api.schemas.base import opt_dec as _opt_dec
from aggregator.api.schemas.venues import Binding, VenueView
from aggregator.risk.whatif import Action

Reason = Literal["no_debt", "no_exposure", "price_invalid", "stale", "unreachable"]
StatusName = Literal["healthy", "warning", "margin_call", "liquidatable"]


class ErrorDetail(_Model):
    code: str = Field(description="Machine-readable error code", examples=["invalid"])
    message: str = Field(description="What is wrong, for a person", examples=["required"])
    field: str | None = Field(
        description="The request field at fault (JSON path), null for the request as a whole",
        examples=["changes[3].amount"],
    )


class ErrorResponse(_Model):
    error: ErrorDetail = Field(description="What was refused and why")


class Sides(_Model):
    init: str = _dec("Initial (opening) side", "1250.5")
    maint: str = _dec("Maintenance (liquidation) side", "1100.25")


class LiquidationPrice(_Model):
    asset: str = Field(description="Asset symbol", examples=["ETH"])
    price_usd: str | None = _opt_dec("The asset's oracle price the status used", "3000")
    liquidation_price_usd: str | None = _opt_dec(
        "Price of the asset at which maintenance health reaches 0, all else fixed (for an "
        "account already liquidatable: the price at which it would recover)",
        "2140.5",
    )
    liquidation_price_usd_reason: Reason | None = Field(
        description="Why there is no liquidation price (null when there is one)",
        examples=["no_debt"],
    )


class AssetLimit(_Model):
    asset: str = Field(description="Asset symbol", examples=["USDC"])
    max_borrow: str | None = _opt_dec(
        "Most of the asset that can still be borrowed keeping initial health >= 0 (token units)",
        "8500.25",
    )
    max_withdraw: str | None = _opt_dec(
        "Most of the asset that can be withdrawn keeping initial health >= 0 (token units)", "2.5"
    )


class ChainFreshness(_Model):
    chain: str = Field(description="CAIP-2 chain id", examples=["eip155:42161"])
    key: str | None = Field(description="The chain's key in the config", examples=["arbitrum"])
    height: int | None = Field(description="Block number or slot read", examples=[19000000])
    block_hash: str | None = Field(description="Hash of that block/slot", examples=["0xab12…"])
    block_time: str | None = Field(
        description="Timestamp of that block (RFC 3339)", examples=["2026-12-01T12:00:00Z"]
    )
    data_age_seconds: str | None = _opt_dec("as_of minus block_time, seconds", "12.5")
    finality: str | None = Field(
        description="Finality level read: finalized, safe, confirmed or latest",
        examples=["finalized"],
    )
    stale: bool = Field(description="The chain's data is older than its max staleness")
    last_poll_failed: bool = Field(description="The newest poll of the chain failed")
    last_poll_error: str | None = Field(
        description="That poll's error", examples=["every endpoint failed"]
    )


class PriceFreshness(_Model):
    asset: str = Field(description="Asset symbol", examples=["ETH"])
    price_usd: str | None = _opt_dec("Oracle price", "3000.12")
    conf_usd: str | None = _opt_dec("Oracle confidence interval (±)", "1.5")
    price_time: str | None = Field(
        description="Publish time of the price (RFC 3339)", examples=["2026-12-01T12:00:00Z"]
    )
    age_seconds: str | None = _opt_dec("as_of minus price_time, seconds", "30")
    valid: bool = Field(description="The price passed its checks (age, confidence, feed)")
    invalid_reason: str | None = Field(
        description="Why it did not", examples=["older than max_price_age_seconds"]
    )


class Holding(_Model):
    account: str | None = Field(description="CAIP-10 account id", examples=["eip155:1:0xAb…"])
    chain: str | None = Field(description="CAIP-2 chain id", examples=["eip155:1"])
    asset: str | None = Field(description="Asset symbol", examples=["USDC"])
    venue: str | None = Field(
        description="wallet, or the protocol holding it", examples=["aave_v3:main"]
    )
    kind: str | None = Field(description="balance, deposit, borrow or perp", examples=["deposit"])
    amount: str | None = _opt_dec("Signed amount in token units (negative: owed)", "-3000")
    amount_raw: str | None = Field(
        description="The same amount in base units (integer text)",
        examples=["-3000000000"],
        pattern=r"^-?\d+$",
    )
    decimals: int | None = Field(description="Decimals of the token", examples=[6])
    entry_price_usd: str | None = _opt_dec("Perp entry price", "140.5")


class Line(_Model):
    kind: str | None = Field(description="holding or perp", examples=["holding"])
    index: int | None = Field(description="Position in the risk input", examples=[0])
    chain: str | None = Field(description="CAIP-2 chain id", examples=["eip155:1"])
    venue: str | None = Field(description="wallet or protocol", examples=["wallet"])
    asset: str | None = Field(description="Asset symbol", examples=["ETH"])
    amount: str | None = _opt_dec("Signed amount (token units) or perp base", "5")
    price_usd: str | None = _opt_dec("Oracle price", "3000")
    price_valid: bool | None = Field(description="The price passed its checks")
    value_usd: str | None = _opt_dec("amount × price", "15000")
    price_used_usd: str | None = _opt_dec(
        "Price after the confidence band and latency buffer", "2990.8"
    )
    buffer: str | None = _opt_dec("Latency buffer b (ratio)", "0.003")
    weight: Sides = Field(description="Asset or liability weight per side (ratios)")
    collateral_usd: Sides = Field(description="Weighted collateral of the line per side")
    requirement_usd: Sides = Field(description="Requirement of the line per side")
    notional_usd: str | None = _opt_dec("Perp notional |base| × mark", "1400")
    pnl_usd: str | None = _opt_dec("Perp unrealized pnl", "-25")


class WorstScenario(_Model):
    name: str | None = Field(description="Scenario name", examples=["ETH -30%"])
    loss_usd: str | None = _opt_dec("Its loss", "1200")


class PortfolioRisk(_Model):
    horizon_seconds: str | None = _opt_dec("Latency horizon", "84")
    confidence: str | None = _opt_dec("ES confidence", "0.975")
    scenario_count: int | None = Field(description="Monte Carlo scenarios", examples=[4000])
    var_usd: str | None = _opt_dec("Value at risk", "800")
    es_usd: str | None = _opt_dec("Expected shortfall", "950")
    stress_loss_usd: str | None = _opt_dec("Worst loss of the stress grid", "1200")
    floor_usd: str | None = _opt_dec("Floor: ratio × gross notional", "100")
    gross_notional_usd: str | None = _opt_dec("Gross notional", "10000")
    worst_scenario: WorstScenario = Field(description="The scenario with the largest loss")


class MarginStatus(_Model):
    """One user's cross-chain margin status (design §5)."""

    user: str | None = Field(
        description="User name (null for an inline portfolio)", examples=["alice"]
    )
    user_id: int | None = Field(description="User id", examples=[1])
    seq: int | None = Field(
        description=(
            "Version of the user's status: one more with every publish that rewrites it"
            " (ETag, stream id)"
        ),
        examples=[42],
    )
    as_of: str | None = Field(
        description="The instant the status values (RFC 3339)", examples=["2026-12-01T12:00:05Z"]
    )
    published_at: str | None = Field(
        description="When it was written", examples=["2026-12-01T12:00:06Z"]
    )
    mode: Literal["standard", "portfolio"] = Field(description="Risk mode")
    status: StatusName = Field(
        description="liquidatable if maintenance health < 0, else margin_call if initial health "
        "< 0, else warning if the health factor is under the warning level, else healthy"
    )
    stale: bool = Field(description="Some input is too old or unpriced: see stale_chains")
    stale_chains: list[str] = Field(description="CAIP-2 ids of chains whose data is stale")
    unpriced_assets: list[str] = Field(description="Assets held that have no usable price")
    equity_usd: str = _dec("Σ amount × price + Σ perp pnl", "106300")
    collateral_value_usd: str | None = _opt_dec("Σ of positive holdings at oracle price", "109500")
    weighted_collateral_usd: Sides = Field(description="Collateral after weights and buffers")
    requirement_usd: Sides = Field(description="Requirements (debts, perp margins, buffers)")
    health_usd: Sides = Field(description="weighted_collateral − requirement")
    health_factor: str | None = _opt_dec("weighted_collateral.maint / requirement.maint", "1.85")
    health_factor_reason: Reason | None = Field(
        description="Why there is no health factor", examples=["no_debt"]
    )
    free_collateral_usd: str = _dec("max(0, health.init)", "89909.72")
    liquidation_prices: list[LiquidationPrice] = Field(
        description="Per asset the book is exposed to: its price and its liquidation price"
    )
    liquidation_shock: str | None = _opt_dec(
        "Smallest uniform relative move of all non-stable prices that brings maintenance "
        "health to 0 (-0.23: all down 23 %)",
        "-0.23",
    )
    liquidation_shock_reason: Reason | None = Field(
        description="Why there is no such move", examples=["unreachable"]
    )
    limits: list[AssetLimit] = Field(description="max borrow and max withdraw per asset")
    accounts: list[str] = Field(description="The user's linked accounts (CAIP-10)")
    chains: list[ChainFreshness] = Field(description="Read point and freshness of each chain")
    prices: list[PriceFreshness] = Field(description="Price and freshness of each asset used")
    holdings: list[Holding] = Field(description="What was read, per account, venue and asset")
    lines: list[Line] = Field(description="The risk engine's valuation, line by line")
    latency_buffers: dict[str, dict[str, str]] = Field(
        description="Latency buffer b per chain (CAIP-2) and asset (ratios)"
    )
    portfolio: PortfolioRisk | None = Field(description="Portfolio-mode figures, else null")
    venues: list[VenueView] = Field(
        description="Each venue account's own health by its own rules, beside the unified "
        "status (which stays the headline `status`)"
    )
    binding: Binding | None = Field(
        description="The view (unified or a venue) nearest to liquidation"
    )
    binding_reason: Literal["unreachable"] | None = Field(
        description="Why nothing binds: no uniform price move liquidates any view",
        examples=[None],
    )


class StatusSummary(_Model):
    seq: int = Field(description="Version of the status", examples=[42])
    as_of: str | None = Field(
        description="The instant it valued", examples=["2026-12-01T12:00:05Z"]
    )
    recorded_at: str | None = Field(
        description="When it was recorded", examples=["2026-12-01T12:00:06Z"]
    )
    status: StatusName = Field(description="The status then", examples=["warning"])
    stale: bool = Field(description="Some input was stale or unpriced")
    stale_chains: list[str] = Field(description="CAIP-2 ids of the stale chains")
    equity_usd: str | None = _opt_dec("Equity", "106300")
    weighted_collateral_usd: Sides = Field(description="Weighted collateral per side")
    requirement_usd: Sides = Field(description="Requirement per side")
    health_factor: str | None = _opt_dec("Health factor", "1.85")
    health_factor_reason: Reason | None = Field(examples=["no_debt"])
    free_collateral_usd: str | None = _opt_dec("Free collateral", "500")


class HistoryPage(_Model):
    user: str = Field(examples=["alice"])
    items: list[StatusSummary] = Field(description="Material status changes, newest first")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next (older) page; null on the last page",
        examples=["q1w2e3..."],
    )


class UserEntry(_Model):
    user: str = Field(examples=["alice"])
    user_id: int = Field(examples=[1])
    accounts: list[str] = Field(description="Linked accounts (CAIP-10)")


class UserPage(_Model):
    items: list[UserEntry] = Field(description="Users by id")
    next_cursor: str | None = Field(examples=[None])


class BatchRequest(_Model):
    users: list[str] = Field(
        default_factory=list, description="User names or ids", examples=[["alice", "2"]]
    )
    accounts: list[str] = Field(
        default_factory=list,
        description="CAIP-10 account ids",
        examples=[["eip155:31337:0x80B98e6B4525053B07767F63563a2c807B2f2BCe"]],
    )


class BatchItem(_Model):
    request: str = Field(description="The user or account as asked", examples=["alice"])
    status: MarginStatus | None = Field(description="Its status, or null with `error`")
    error: ErrorDetail | None = Field(description="Why there is none")


class BatchResponse(_Model):
    results: list[BatchItem] = Field(description="One per requested user, then per account")


class TierOut(_Model):
    start: str = _dec("Band start (token units)", "0")
    end: str | None = _opt_dec("Band end, null for open-ended", "100000")
    ratio: str = _dec("Collateral ratio of the band", "1")


class PriceSourceOut(_Model):
    kind: str = Field(examples=["chainlink"])
    chain: str = Field(description="CAIP-2 chain id", examples=["eip155:1"])
    address: str = Field(examples=["0x5f4eC3Df9cbd43714FE2740f5E3616155c5b8419"])
    feed_id: str | None = Field(examples=[None])


class DeploymentOut(_Model):
    chain: str = Field(description="CAIP-2 chain id", examples=["eip155:1"])
    address: str = Field(description="Token contract, mint, or `native`", examples=["native"])
    decimals: int = Field(examples=[18])
    token_program: str | None = Field(examples=[None])


class AssetOut(_Model):
    symbol: str = Field(examples=["ETH"])
    family: str = Field(description="Risk-factor family", examples=["ETH"])
    stable: bool = Field(description="A stablecoin (depeg scenario, no liquidation price)")
    volatility: str = _dec("Annualized volatility", "0.8")
    init_weight: str = _dec("Initial asset weight", "0.8")
    maint_weight: str = _dec("Maintenance asset weight", "0.9")
    init_liability_weight: str = _dec("Initial liability weight", "1.2")
    maint_liability_weight: str = _dec("Maintenance liability weight", "1.1")
    imf: str = _dec("Size factor of the weights", "0.0005")
    tiers: list[TierOut] = Field(description="Collateral ratio bands by size (token units)")
    max_price_age_seconds: int = Field(
        description="A price older than this is invalid", examples=[3600]
    )
    price_source: PriceSourceOut | None = Field(description="The oracle feed read")
    deployments: list[DeploymentOut] = Field(description="Where the asset lives, per chain")


class AssetList(_Model):
    items: list[AssetOut] = Field(description="Every configured asset, by symbol")


class LastPoll(_Model):
    at: str | None = Field(description="When it finished", examples=["2026-12-01T12:00:00Z"])
    ok: bool | None = Field(description="It succeeded (null: never polled)")
    error: str | None = Field(examples=[None])
    duration_ms: int | None = Field(examples=[120])
    endpoint: str | None = Field(examples=["https://rpc.example"])
    height: int | None = Field(examples=[19000000])


class ChainOut(_Model):
    chain: str = Field(description="CAIP-2 chain id", examples=["eip155:1"])
    key: str = Field(examples=["ethereum"])
    family: str = Field(examples=["evm"])
    finality: str = Field(description="Configured finality", examples=["finalized"])
    height: int | None = Field(description="Newest good read point", examples=[19000000])
    block_hash: str | None = Field(examples=["0xab12…"])
    block_time: str | None = Field(examples=["2026-12-01T12:00:00Z"])
    age_seconds: str | None = _opt_dec("Now minus block_time", "14.2")
    max_staleness_seconds: int = Field(examples=[300])
    stale: bool = Field(description="age_seconds > max_staleness_seconds, or never read")
    failures_since_head: int = Field(description="Failed polls since the newest good one")
    last_poll: LastPoll = Field(description="The newest poll, good or failed")


class ChainList(_Model):
    items: list[ChainOut] = Field(description="Every configured chain")


class Change(_Model):
    """One proposed change; which fields apply depends on `action`."""

    action: Action = Field(examples=["borrow"])
    chain: str | None = Field(
        default=None,
        description="CAIP-2 chain id (as the book names it)",
        examples=["eip155:31337"],
    )
    venue: str | None = Field(
        default=None, description="wallet (default) or a venue", examples=["aave_v3:devnet"]
    )
    asset: str | None = Field(
        default=None,
        description="Asset symbol (price_shock: omit for every non-stable asset)",
        examples=["USDC"],
    )
    amount: str | float | int | None = Field(
        default=None, description="Positive amount in token units", examples=["1000"]
    )
    base: str | float | int | None = Field(
        default=None,
        description="Perp size (open: signed size; resize: signed change)",
        examples=["-2.5"],
    )
    entry_price: str | float | int | None = Field(
        default=None,
        description="open_perp: entry price (default: the asset's price)",
        examples=["140"],
    )
    imr: str | float | int | None = Field(default=None, examples=["0.1"])
    mmr: str | float | int | None = Field(default=None, examples=["0.05"])
    imf: str | float | int | None = Field(default=None, examples=["0.0005"])
    change: str | float | int | None = Field(
        default=None, description="price_shock: relative move, -0.2 for -20 %", examples=["-0.2"]
    )


class SimulateRequest(_Model):
    changes: list[Change] = Field(
        description="Applied in order",
        examples=[
            [
                {
                    "action": "borrow",
                    "chain": "eip155:31337",
                    "venue": "aave_v3:devnet",
                    "asset": "USDC",
                    "amount": "1000",
                }
            ]
        ],
    )


class InlineSimulateRequest(_Model):
    portfolio: dict[str, object] = Field(
        description="A `risk evaluate` document (config/portfolio.schema.json)"
    )
    changes: list[Change] = Field(default_factory=list, description="Applied in order")


class SimulateResponse(_Model):
    before: MarginStatus = Field(description="The book as it is (equals the published status)")
    after: MarginStatus = Field(description="The book with the changes")
    max_borrow_after: dict[str, str] = Field(description="Per asset, token units")
    max_withdraw_after: dict[str, str] = Field(description="Per asset, token units")


class Health(_Model):
    status: Literal["ok"] = Field(default="ok", description="Always ok while the process runs")


class Readiness(_Model):
    ready: bool = Field(description="Ready to serve fresh statuses")
    database: bool = Field(description="The database answered")
    stale_chains: list[str] = Field(description="CAIP-2 ids of chains whose data is too old")
    reasons: list[str] = Field(description="Why not ready, one line each")


# --- trust (issue 8): wallet links with proof, sign-in sessions, attestations -----------------

CAIP2_PATTERN = r"^[-a-z0-9]{3,8}:[-_a-zA-Z0-9]{1,32}$"
MAX_SIGNED_TEXT = 8192  # the parser refuses anything over 2048 characters, naming the field
MAX_SIGNATURE_TEXT = 10_000


class WalletNonceRequest(_Model):
    chain: str = Field(
        description="CAIP-2 id of a configured EVM or Solana chain",
        examples=["eip155:31337"],
        max_length=64,
    )
    address: str = Field(
        description="The account: EIP-55 (or all-lowercase) EVM address, or base58 Solana key",
        examples=["0x80B98e6B4525053B07767F63563a2c807B2f2BCe"],
        min_length=1,
        max_length=128,
    )


class SignInNonceRequest(WalletNonceRequest):
    user: str = Field(
        description="The xmargin user to sign in as (name or numeric id)",
        examples=["alice"],
        min_length=1,
        max_length=200,
    )


class NonceResponse(_Model):
    nonce: str = Field(description="Single use; expires at `expiration_time`")
    message: str = Field(
        description="The exact text to sign, unchanged (EIP-4361 for EVM, CAIP-122 for Solana)"
    )
    purpose: Literal["link", "signin"] = Field(
        description="`link` (wallet link) or `signin` (session)", examples=["link"]
    )
    user_id: int = Field(description="Numeric user id (named in the signed text)", examples=[7])
    account: str = Field(description="CAIP-10 id of the account that must sign")
    issued_at: str = Field(description="RFC 3339")
    expiration_time: str = Field(description="RFC 3339")


class SignedMessage(_Model):
    message: str = Field(
        description="The text from the nonce endpoint, exactly as signed",
        min_length=1,
        max_length=MAX_SIGNED_TEXT,
    )
    signature: str = Field(
        description=(
            "EVM: 0x-hex personal_sign (65 bytes), or an EIP-1271 contract wallet's signature; "
            "Solana: base58 ed25519 signature (64 bytes)"
        ),
        min_length=1,
        max_length=MAX_SIGNATURE_TEXT,
    )


class LinkedWallet(_Model):
    user: str = Field(description="User name", examples=["alice"])
    user_id: int = Field(description="Numeric user id (named in the signed text)", examples=[7])
    account: str = Field(description="CAIP-10 id of the linked account")
    method: Literal["eip191", "eip1271", "ed25519"] = Field(description="How ownership was proven")
    block_number: int | None = Field(
        description="EIP-1271: the block the contract wallet was asked at; else null"
    )
    verified_at: str = Field(description="RFC 3339")


class Session(_Model):
    token: str = Field(description="Send as `Authorization: Bearer <token>`")
    token_type: Literal["Bearer"] = Field(
        default="Bearer", description="Always `Bearer`", examples=["Bearer"]
    )
    user: str = Field(description="User name", examples=["alice"])
    user_id: int = Field(description="Numeric user id (named in the signed text)", examples=[7])
    account: str = Field(description="CAIP-10 id of the wallet that signed in")
    expires_at: str = Field(description="RFC 3339")
    expires_in: int = Field(description="Seconds from now")


class ReadPoint(_Model):
    chain: str = Field(description="CAIP-2")
    height: int | None = Field(description="Block number (EVM) or slot (Solana) read")
    block_hash: str | None = Field(description="Hash of that block (EVM) or blockhash (Solana)")


class Attestation(_Model):
    user: str = Field(description="User name", examples=["alice"])
    user_id: int = Field(description="Numeric user id (named in the signed text)", examples=[7])
    seq: int = Field(description="The status version attested (its ETag)")
    typed_data: dict[str, Any] = Field(
        description=(
            "EIP-712 typed data (`eth_signTypedData_v4` shape) of `MarginStatus`; integers are "
            "decimal strings, bytes 0x-hex"
        )
    )
    digest: str = Field(description="The EIP-712 digest signed (0x-hex)")
    signature: str = Field(description="65-byte r||s||v signature by `signer` (0x-hex)")
    signer: str = Field(description="EIP-55 address of the service key that signed")
    signers: list[str] = Field(
        description="Signer addresses the operator lists ([auth] signers): current, then previous"
    )
    breakdown: dict[str, Any] = Field(
        description="The canonical JSON `breakdownHash` is the keccak256 of"
    )
    read_points: list[ReadPoint] = Field(description="The block or slot of every chain used")
    expires_at: str = Field(description="RFC 3339: the struct's `expiresAt`")
