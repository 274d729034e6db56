"""The pydantic models of each table of the config files: `[risk]`, `[service]`, `[api]`,
`[auth]`, `[chains.*]` with their venues, `[assets.*]`. Every model refuses unknown keys; the
loader (`aggregator.config`) turns a refusal into a line naming the file and the key."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from aggregator.addresses import AddressError, normalize_address

SOLANA_MAINNET_GENESIS = "5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def env_var_name(value: str) -> str:
    """`value`, when it can name an environment variable (secrets are read from those).

    May raise: ValueError.
    """
    if not re.fullmatch(r"[A-Z][A-Z0-9_]*", value):
        raise ValueError(f"{value!r} is not an environment variable name")
    return value


Ratio = Annotated[Decimal, Field(ge=0)]


class RiskSettings(_Strict):
    """Risk defaults of design §5; config/default.toml sets them."""

    mode: Literal["standard", "portfolio"] = "standard"
    conf_multiplier: Ratio = Decimal("1")
    max_conf_ratio: Ratio = Decimal("0.10")
    latency_z: Ratio = Decimal("2.326")
    warning_health_factor: Ratio = Decimal("1.25")
    pnl_weight_init: Ratio = Decimal("0.9")
    pnl_weight_maint: Ratio = Decimal("1.0")
    portfolio_floor_ratio: Ratio = Decimal("0.01")
    portfolio_init_multiplier: Ratio = Decimal("1.25")
    portfolio_stress_in_requirement: bool = False
    volatility_source: Literal["configured", "ewma"] = "configured"
    ewma_half_life_seconds: Annotated[Decimal, Field(gt=0)] = Decimal(86_400)
    ewma_window_seconds: Annotated[int, Field(gt=0)] = 7 * 86_400
    history_material_change: Ratio = Decimal("0.01")
    # A status is rewritten when its headline numbers move by more than this (relative), its
    # status, staleness or lines change, or a head it was read at is orphaned: see README.
    republish_relative_change: Ratio = Decimal("0.001")


class ServiceSettings(_Strict):
    publish_interval_seconds: Annotated[float, Field(gt=0)] = 15.0
    misfire_grace_seconds: Annotated[float, Field(gt=0)] = 30.0
    keep_heads_per_chain: Annotated[int, Field(ge=1)] = 100
    shutdown_grace_seconds: Annotated[float, Field(gt=0)] = 60.0
    # A publish pass works on `user_id % publish_shards`, each shard its own transaction/lock.
    publish_shards: Annotated[int, Field(ge=1, le=4096)] = 16
    # Processes that publish shards in parallel (1: in the calling process; set it to the
    # machine's cores for large user counts).
    publish_workers: Annotated[int, Field(ge=1, le=64)] = 1
    # A status unchanged for this long is rewritten anyway (fresh as_of and read points; the
    # heads it was valued from can then be pruned). 0: only when something changed.
    status_refresh_seconds: Annotated[int, Field(ge=0)] = 3600
    # Retention by whole time partitions (`aggregator.store.partitions`, run with pruning):
    # a day of observation lines goes this long after it ended (never one a latest status
    # or a chain's newest head still uses); a month of status history likewise.
    observation_retention_days: Annotated[int, Field(ge=1, le=3650)] = 7
    history_retention_days: Annotated[int, Field(ge=1, le=36500)] = 90


def _cron_or_empty(value: str) -> str:
    """A procrastinate cron string (5 fields, or 6 with seconds last), or "" for none."""
    value = value.strip()
    if value:
        from croniter import croniter

        if not croniter.is_valid(value):
            raise ValueError(f"not a cron expression: {value!r}")
    return value


class WorkSettings(_Strict):
    """The work queue (`xmargin worker`, `xmargin dispatch`; see `aggregator.work`)."""

    # When workers defer a round themselves (cron, optional 6th field = seconds); "" leaves
    # it to `xmargin dispatch` run from cron.
    dispatch_cron: Annotated[str, AfterValidator(_cron_or_empty)] = "* * * * * */15"
    # When the reaper looks for jobs of dead workers.
    reap_cron: Annotated[str, AfterValidator(_cron_or_empty)] = "* * * * * */10"
    # A worker's heartbeat period; one silent for `stalled_seconds` counts as dead.
    heartbeat_seconds: Annotated[float, Field(gt=0)] = 10.0
    stalled_seconds: Annotated[float, Field(gt=0)] = 60.0
    # Finished jobs (and shard markers) are deleted by the prune task after this long.
    keep_finished_jobs_hours: Annotated[int, Field(ge=1)] = 24
    # What a round polls (`work.dispatch`): "chain", one `poll` per chain; "shards", one
    # `poll_shard` per (chain, shard of [service] publish_shards) with wallets; "activity",
    # EVM chains only what their head follower saw touched (plus the sweeper), Solana chains
    # with `ws_url` only what their watcher saw, every other chain by shard as "shards".
    round_polls: Literal["chain", "shards", "activity"] = "chain"
    # "activity": the sweeper polls every shard of a chain at least this often, catching what
    # no log or notification shows (native coin, rebasing tokens, interest accrual).
    sweep_seconds: Annotated[float, Field(gt=0)] = 3600.0
    # The EVM head follower: blocks per eth_getLogs request at most (halved while a provider
    # refuses the range), and blocks re-read below the cursor on every run (0: follow only at
    # the chain's `finality` read point, which a reorg does not reach).
    follow_max_blocks: Annotated[int, Field(ge=1, le=1_000_000)] = 2000
    follow_overlap_blocks: Annotated[int, Field(ge=0, le=1000)] = 0

    @model_validator(mode="after")
    def _stalled_after_heartbeats(self) -> WorkSettings:
        if self.stalled_seconds < 2 * self.heartbeat_seconds:
            raise ValueError("stalled_seconds must be at least twice heartbeat_seconds")
        return self


class ApiSettings(_Strict):
    """The HTTP API (`xmargin api`, and beside the daemon in `xmargin run`)."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    cors_origins: list[str] = []  # browser origins allowed to call the API ("*" for any)
    max_batch: Annotated[int, Field(ge=1, le=1000)] = 100
    max_simulate_changes: Annotated[int, Field(ge=1, le=10_000)] = 100
    history_max_limit: Annotated[int, Field(ge=1, le=10_000)] = 500
    stream_queue_size: Annotated[int, Field(ge=1, le=100_000)] = 256
    stream_heartbeat_seconds: Annotated[float, Field(gt=0)] = 15.0
    cache_max_age_seconds: Annotated[int, Field(ge=0)] = 5

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise ValueError(f"{origin!r} is not an origin (scheme://host[:port]) or '*'")
            if origin != "*" and origin.rstrip("/") != origin:
                raise ValueError(f"{origin!r}: an origin has no trailing slash")
        return origins


Access = Literal["open", "auth"]


class AuthRequirements(_Strict):
    """Who may make each group of reads: `open` (anyone) or `auth` (an API key with scope
    `read` or more, or a sign-in session, which only ever reaches its own user's data)."""

    ops: Access = "open"  # /healthz, /readyz, /metrics: no user data
    reference: Access = "auth"  # assets, their risk parameters, chain freshness
    user: Access = "auth"  # statuses, history, streams, what-if, attestations


class AuthSettings(_Strict):
    """Proof of wallet ownership, sign-in sessions, API keys and attestations (issue 8).

    No secret lives here: the session keys and the signing key come from the environment.
    """

    domain: str = "127.0.0.1:8080"  # the host[:port] a signed link or sign-in text must name
    uri: str = "http://127.0.0.1:8080"  # the URI it must name
    nonce_ttl_seconds: Annotated[int, Field(gt=0, le=86_400)] = 300
    session_ttl_seconds: Annotated[int, Field(gt=0, le=7 * 86_400)] = 3600
    session_key_id: str = "s1"  # signs new session tokens; its secret is in <env>_<ID>
    session_key_env: str = "XMARGIN_SESSION_KEY"  # prefix of the variables holding the secrets
    previous_session_key_ids: list[str] = []  # still accepted; drop one to revoke its tokens
    attestation_chain_id: Annotated[int, Field(gt=0)] | None = None
    attestation_verifying_contract: str | None = None
    attestation_ttl_seconds: Annotated[int, Field(gt=0, le=86_400)] = 300
    signers: list[str] = []  # attestation signer addresses: the current first, then previous
    rate_per_minute: Annotated[int, Field(ge=1)] = 600  # per key, unless the key sets its own
    require: AuthRequirements = AuthRequirements()

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?", value):
            raise ValueError(f"{value!r} is not host[:port] (no scheme, no path)")
        return value

    @field_validator("uri")
    @classmethod
    def _uri(cls, value: str) -> str:
        if not re.fullmatch(r"https?://\S+", value):
            raise ValueError(f"{value!r} is not an http(s) URI")
        return value

    @field_validator("session_key_id")
    @classmethod
    def _key_id(cls, value: str) -> str:
        return _session_key_id(value)

    @field_validator("previous_session_key_ids")
    @classmethod
    def _key_ids(cls, values: list[str]) -> list[str]:
        return [_session_key_id(value) for value in values]

    @field_validator("session_key_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        return env_var_name(value)

    @field_validator("attestation_verifying_contract")
    @classmethod
    def _contract(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                normalize_address("evm", value)
            except AddressError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("signers")
    @classmethod
    def _signers(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                normalize_address("evm", value)
            except AddressError as exc:
                raise ValueError(str(exc)) from None
        if len(set(values)) != len(values):
            raise ValueError("a signer is listed twice")
        return values


def _session_key_id(value: str) -> str:
    if not re.fullmatch(r"[a-z0-9]{1,16}", value):
        raise ValueError(f"{value!r}: a key id is 1-16 of a-z, 0-9")
    return value


class AavePoolConfig(_Strict):
    name: str
    pool: str
    data_provider: str
    # The pool's price oracle (AaveOracle, `PoolAddressesProvider.getPriceOracle()`): the venue
    # view values the pool's accounts at its prices. Without it the venue line says so.
    oracle: str | None = None
    # Which GenericLogic rounding the pool follows: "v3-origin" (v3.2 on) or "v3-core" (v3.0-3.1).
    revision: Literal["v3-core", "v3-origin"] = "v3-origin"


class DriftPerpMarketConfig(_Strict):
    market_index: int
    asset: str
    imr: Ratio
    mmr: Ratio
    imf: Ratio = Decimal("0")


class DriftSpotMarketConfig(_Strict):
    market_index: int
    asset: str
    account: str


class DriftConfig(_Strict):
    program_id: str
    sub_account_ids: list[int] = [0]
    spot_markets: list[DriftSpotMarketConfig] = []
    perp_markets: list[DriftPerpMarketConfig] = []


class KaminoReserveConfig(_Strict):
    reserve: str
    asset: str


class KaminoConfig(_Strict):
    program_id: str
    lending_markets: list[str] = []
    reserves: list[KaminoReserveConfig] = []


class MarginfiBankConfig(_Strict):
    bank: str
    asset: str


class MarginfiConfig(_Strict):
    program_id: str
    group: str
    banks: list[MarginfiBankConfig] = []
    account_indexes: list[int] = [0]
    discover_accounts: bool = True  # getProgramAccounts per wallet for keypair accounts


class ChainConfig(_Strict):
    """One chain: how to reach it and how much to trust its data."""

    family: Literal["evm", "solana", "hyperliquid"]
    chain_id: int | None = None  # EVM
    genesis_hash: str | None = None  # Solana: CAIP-2 reference
    network: Literal["mainnet", "testnet", "localnet"] | None = None  # Hyperliquid (CAIP-2)
    rpc_urls: Annotated[list[str], Field(min_length=1)]
    finality: str = "finalized"
    finality_seconds: Annotated[int, Field(ge=0)] = 0
    liquidation_latency_seconds: Annotated[int, Field(ge=0)] = 60
    max_staleness_seconds: Annotated[int, Field(gt=0)] = 300
    poll_interval_seconds: Annotated[float, Field(gt=0)] = 15.0
    timeout_seconds: Annotated[float, Field(gt=0)] = 10.0
    retries: Annotated[int, Field(ge=0)] = 2
    calls_per_batch: Annotated[int, Field(gt=0)] = 1000
    native_asset: str | None = None
    aave_pools: list[AavePoolConfig] = []
    drift: DriftConfig | None = None
    kamino: KaminoConfig | None = None
    marginfi: MarginfiConfig | None = None
    native_balances: bool = True  # Solana: also read each wallet's SOL
    ws_url: str | None = None  # Solana: RPC PubSub websocket for account-change notifications
    # Hyperliquid: weight budget per info URL, perp coin -> asset, account modes read
    weight_per_minute: Annotated[int, Field(gt=0)] = 1200
    perp_coins: dict[str, str] = {}
    read_abstraction: bool = True

    @field_validator("rpc_urls")
    @classmethod
    def _urls_are_http(cls, urls: list[str]) -> list[str]:
        for url in urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"{url!r} is not an http(s) URL")
        return urls

    @field_validator("ws_url")
    @classmethod
    def _url_is_websocket(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("ws://", "wss://")):
            raise ValueError(f"{url!r} is not a ws(s) URL")
        return url

    @field_validator("finality")
    @classmethod
    def _finality_of_family(cls, value: str, info: ValidationInfo) -> str:
        family = info.data.get("family")
        if family == "evm" and not _is_evm_finality(value):
            raise ValueError(f"{value!r}: use finalized, safe, latest or latest-N")
        if family == "solana" and value not in ("finalized", "confirmed"):
            raise ValueError(f"{value!r}: use finalized or confirmed on solana")
        if family == "hyperliquid" and value != "latest":
            raise ValueError(f"{value!r}: hyperliquid is read at latest only")
        return value

    @model_validator(mode="after")
    def _family_fields(self) -> ChainConfig:
        if self.family == "evm" and self.chain_id is None:
            raise ValueError("an evm chain needs chain_id")
        if self.family != "evm" and self.aave_pools:
            raise ValueError("aave_pools are for evm chains")
        if self.family == "hyperliquid":
            if self.network is None:
                raise ValueError("a hyperliquid chain needs network (mainnet, testnet, localnet)")
            if self.finality != "latest":
                raise ValueError('a hyperliquid chain needs finality = "latest"')
        elif self.perp_coins:
            raise ValueError("perp_coins are for hyperliquid chains")
        if self.family != "solana" and self.ws_url is not None:
            raise ValueError("ws_url is for solana chains")
        return self

    @property
    def caip2(self) -> str:
        if self.family == "evm":
            return f"eip155:{self.chain_id}"
        if self.family == "hyperliquid":
            return f"hypercore:{self.network}"
        return f"solana:{(self.genesis_hash or SOLANA_MAINNET_GENESIS)[:32]}"


_PRICE_KIND_OF_FAMILY = {"evm": "chainlink", "solana": "pyth", "hyperliquid": "hyperliquid"}


def _is_coin_name(value: str) -> bool:
    """A HyperCore coin or token name: USDC, HYPE, UETH, flx:CRCL."""
    return bool(value) and value != "native" and all(c.isalnum() or c in ":._-" for c in value)


def _is_evm_finality(value: str) -> bool:
    if value in ("finalized", "safe", "latest"):
        return True
    head, _, depth = value.partition("-")
    return head == "latest" and depth.isdigit()


class DeploymentConfig(_Strict):
    """Where an asset lives on one chain: a contract, a mint, or the chain's native coin."""

    address: str  # "native", an EVM address, or a Solana mint
    decimals: Annotated[int, Field(ge=0, le=36)]
    token_program: Literal["spl_token", "token_2022"] | None = None


class PriceSourceConfig(_Strict):
    kind: Literal["chainlink", "pyth", "hyperliquid"]
    chain: str
    address: str  # Chainlink proxy, the Pyth PriceUpdateV2 account, or (hyperliquid) the coin
    feed_id: str | None = None  # Pyth only
    coin: str | None = None  # Hyperliquid only: the perp coin whose oracle price it is

    @model_validator(mode="before")
    @classmethod
    def _coin_is_the_address(cls, data: Any) -> Any:
        # A Hyperliquid price is named by its coin; the store keys price sources by address.
        if isinstance(data, dict) and data.get("kind") == "hyperliquid" and "address" not in data:
            return {**data, "address": data.get("coin")}
        return data


Tier = tuple[Decimal, Decimal | None, Decimal]


class AssetConfig(_Strict):
    """An asset's risk parameters (design §5) and where it lives."""

    family: str
    stable: bool = False
    volatility: Ratio
    # Maintenance before initial: the initial weights are checked against them.
    maint_weight: Annotated[Decimal, Field(ge=0, le=1)]
    init_weight: Annotated[Decimal, Field(ge=0, le=1)]
    maint_liability_weight: Annotated[Decimal, Field(ge=1)]
    init_liability_weight: Annotated[Decimal, Field(ge=1)]
    imf: Ratio = Decimal("0")
    tiers: list[Tier] = []
    max_price_age_seconds: Annotated[int, Field(gt=0)] = 3600
    price: PriceSourceConfig | None = None
    deployments: dict[str, DeploymentConfig] = {}

    @field_validator("init_weight")
    @classmethod
    def _init_weight_below_maint(cls, value: Decimal, info: ValidationInfo) -> Decimal:
        maint = info.data.get("maint_weight")
        if maint is not None and value > maint:
            raise ValueError(
                f"init_weight {value} > maint_weight {maint}: "
                "the initial weight must not exceed the maintenance weight"
            )
        return value

    @field_validator("init_liability_weight")
    @classmethod
    def _init_liability_above_maint(cls, value: Decimal, info: ValidationInfo) -> Decimal:
        maint = info.data.get("maint_liability_weight")
        if maint is not None and value < maint:
            raise ValueError(
                f"init_liability_weight {value} < maint_liability_weight {maint}: "
                "the initial liability weight must not be below the maintenance one"
            )
        return value

    @field_validator("tiers", mode="before")
    @classmethod
    def _open_ended_tier(cls, tiers: Any) -> Any:
        # TOML has no null: the last band is written with "inf" as its end.
        if isinstance(tiers, list):
            return [
                [t[0], None, t[2]] if isinstance(t, list) and len(t) == 3 and t[1] == "inf" else t
                for t in tiers
            ]
        return tiers

    @field_validator("tiers")
    @classmethod
    def _tiers_contiguous(cls, tiers: list[Tier]) -> list[Tier]:
        expected = Decimal(0)
        for i, (start, end, ratio) in enumerate(tiers):
            if start != expected:
                raise ValueError(f"tier {i} starts at {start}, expected {expected}")
            if ratio < 0 or ratio > 1:
                raise ValueError(f"tier {i} ratio {ratio} is outside [0, 1]")
            if end is None:
                if i != len(tiers) - 1:
                    raise ValueError(f"tier {i} is open-ended but is not the last")
                break
            if end <= start:
                raise ValueError(f"tier {i} ends at {end}, not after its start {start}")
            expected = end
        return tiers
