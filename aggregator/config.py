"""The loader of the TOML files under config/ (their tables' models: `aggregator.config_tables`).

A config file may name a base file with `extends = "default.toml"` (relative to itself); tables
merge key by key, the extending file winning. Every problem is reported as one line naming the
file the offending key came from and the key path, before any work starts.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import (
    Field,
    ValidationError,
)

from aggregator.addresses import AddressError, normalize_address
from aggregator.alerts.config import AlertSettings
from aggregator.config_tables import (
    _PRICE_KIND_OF_FAMILY,
    ApiSettings,
    AssetConfig,
    AuthSettings,
    ChainConfig,
    DriftConfig,
    KaminoConfig,
    MarginfiConfig,
    RiskSettings,
    ServiceSettings,
    WorkSettings,
    _is_coin_name,
    _Strict,
)

DEFAULT_CONFIG_ENV = "XMARGIN_CONFIG"

KeyPath = tuple[str | int, ...]


class ConfigError(Exception):
    """The configuration is invalid.

    `problems` holds one line per problem: `file: key.path: why`.
    """

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class XmarginConfig(_Strict):
    """The whole configuration: risk defaults, service settings, chains and assets."""

    risk: RiskSettings = RiskSettings()
    service: ServiceSettings = ServiceSettings()
    api: ApiSettings = ApiSettings()
    auth: AuthSettings = AuthSettings()
    alerts: AlertSettings = AlertSettings()
    work: WorkSettings = WorkSettings()
    chains: dict[str, ChainConfig] = Field(default_factory=dict)
    assets: dict[str, AssetConfig] = Field(default_factory=dict)


class LoadedConfig:
    """A validated config with the file it was loaded from."""

    def __init__(self, path: Path, model: XmarginConfig) -> None:
        self.path = path
        self.model = model

    @property
    def chains(self) -> dict[str, ChainConfig]:
        return self.model.chains

    @property
    def assets(self) -> dict[str, AssetConfig]:
        return self.model.assets

    @property
    def risk(self) -> RiskSettings:
        return self.model.risk

    @property
    def service(self) -> ServiceSettings:
        return self.model.service

    @property
    def api(self) -> ApiSettings:
        return self.model.api

    @property
    def auth(self) -> AuthSettings:
        return self.model.auth

    @property
    def alerts(self) -> AlertSettings:
        return self.model.alerts

    @property
    def work(self) -> WorkSettings:
        return self.model.work

    def native_asset(self, chain: str) -> str | None:
        """The asset whose deployment on `chain` is `native`."""
        for symbol, asset in self.assets.items():
            dep = asset.deployments.get(chain)
            if dep is not None and dep.address == "native":
                return symbol
        return None


def default_config_path(env: Mapping[str, str] | None = None) -> Path:
    """`XMARGIN_CONFIG` when set, else config/devnet.toml (the local demo chains)."""
    env = os.environ if env is None else env
    if env.get(DEFAULT_CONFIG_ENV):
        return Path(env[DEFAULT_CONFIG_ENV])
    return Path("config/devnet.toml")


def load_config(path: str | Path) -> LoadedConfig:
    """Read, merge (`extends`) and validate a config file.

    May raise: ConfigError (one line per problem, each naming the file and the key path).
    """
    path = Path(path)
    origins: dict[KeyPath, Path] = {}
    raw = _read_with_extends(path, origins, seen=())
    try:
        model = XmarginConfig.model_validate(raw)
    except ValidationError as exc:
        problems = _describe_errors(exc, origins, path)
        # Check what did validate across tables too, so one run reports every problem.
        declared = raw.get("chains")
        problems += _cross_checks(
            _valid_parts(raw),
            origins,
            path,
            declared_chains=set(declared) if isinstance(declared, dict) else set(),
        )
        raise ConfigError(problems) from None
    problems = _cross_checks(model, origins, path)
    if problems:
        raise ConfigError(problems)
    return LoadedConfig(path, model)


def _valid_parts(raw: dict[str, Any]) -> XmarginConfig:
    """The chains and assets of `raw` that validate on their own."""
    parts: dict[str, dict[str, Any]] = {"chains": {}, "assets": {}}
    for table, model in (("chains", ChainConfig), ("assets", AssetConfig)):
        entries = raw.get(table)
        if not isinstance(entries, dict):
            continue
        for key, value in entries.items():
            try:
                parts[table][key] = model.model_validate(value)
            except ValidationError:
                continue
    return XmarginConfig.model_construct(chains=parts["chains"], assets=parts["assets"])


def _read_with_extends(
    path: Path, origins: dict[KeyPath, Path], seen: tuple[Path, ...]
) -> dict[str, Any]:
    resolved = path.resolve()
    if resolved in seen:
        raise ConfigError([f"{path}: extends: circular (via {' -> '.join(map(str, seen))})"])
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    base_name = doc.pop("extends", None)
    merged: dict[str, Any] = {}
    if base_name is not None:
        if not isinstance(base_name, str):
            raise ConfigError([f"{path}: extends: must be a file name"])
        merged = _read_with_extends(path.parent / base_name, origins, (*seen, resolved))
    _merge_into(merged, doc, (), origins, path)
    return merged


def _merge_into(
    target: dict[str, Any],
    overlay: Mapping[str, Any],
    prefix: KeyPath,
    origins: dict[KeyPath, Path],
    path: Path,
) -> None:
    for key, value in overlay.items():
        key_path = (*prefix, key)
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge_into(target[key], value, key_path, origins, path)
        else:
            target[key] = value
            origins[key_path] = path


def _origin(loc: KeyPath, origins: dict[KeyPath, Path], fallback: Path) -> Path:
    for end in range(len(loc), 0, -1):
        found = origins.get(loc[:end])
        if found is not None:
            return found
    return fallback


def _format_loc(loc: KeyPath) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out or "(top level)"


def _describe_errors(exc: ValidationError, origins: dict[KeyPath, Path], path: Path) -> list[str]:
    problems = []
    for err in exc.errors():
        # pydantic adds the validator kind ("function-after[...]") to locations; drop it.
        loc: KeyPath = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key"
        elif err["type"] == "missing":
            message = "required key is missing"
        problems.append(f"{_origin(loc, origins, path)}: {_format_loc(loc)}: {message}")
    return problems


def _cross_checks(
    model: XmarginConfig,
    origins: dict[KeyPath, Path],
    path: Path,
    declared_chains: set[str] | None = None,
) -> list[str]:
    """Checks that span several tables: chains named by assets, addresses by family.

    `declared_chains` names chains present in the file but invalid on their own (already
    reported): references to them are not reported again as unknown.
    """
    problems: list[str] = []
    declared = (declared_chains or set()) | set(model.chains)
    loc: KeyPath

    def problem(loc: KeyPath, message: str) -> None:
        problems.append(f"{_origin(loc, origins, path)}: {_format_loc(loc)}: {message}")

    def check_address(loc: KeyPath, chain_key: str, value: str) -> None:
        chain = model.chains.get(chain_key)
        if chain is None:
            return
        try:
            normalize_address(chain.family, value)
        except AddressError as exc:
            problem(loc, str(exc))

    for chain_key, chain in model.chains.items():
        for i, pool in enumerate(chain.aave_pools):
            for field in ("pool", "data_provider", "oracle"):
                if getattr(pool, field) is None:
                    continue
                check_address(
                    ("chains", chain_key, "aave_pools", i, field), chain_key, getattr(pool, field)
                )
        venues: tuple[tuple[str, DriftConfig | KaminoConfig | MarginfiConfig | None], ...] = (
            ("drift", chain.drift),
            ("kamino", chain.kamino),
            ("marginfi", chain.marginfi),
        )
        for venue_key, venue in venues:
            if venue is None:
                continue
            if chain.family != "solana":
                problem(("chains", chain_key, venue_key), f"{venue_key} is a Solana venue")
                continue
            check_address(
                ("chains", chain_key, venue_key, "program_id"), chain_key, venue.program_id
            )
        if chain.marginfi is not None and chain.family == "solana":
            check_address(
                ("chains", chain_key, "marginfi", "group"), chain_key, chain.marginfi.group
            )
            for i, bank in enumerate(chain.marginfi.banks):
                loc = ("chains", chain_key, "marginfi", "banks", i)
                if bank.asset not in model.assets:
                    problem((*loc, "asset"), f"unknown asset {bank.asset!r}")
                check_address((*loc, "bank"), chain_key, bank.bank)
        if chain.drift is not None:
            for i, spot in enumerate(chain.drift.spot_markets):
                loc = ("chains", chain_key, "drift", "spot_markets", i)
                if spot.asset not in model.assets:
                    problem((*loc, "asset"), f"unknown asset {spot.asset!r}")
                check_address((*loc, "account"), chain_key, spot.account)
            for i, perp in enumerate(chain.drift.perp_markets):
                if perp.asset not in model.assets:
                    problem(
                        ("chains", chain_key, "drift", "perp_markets", i, "asset"),
                        f"unknown asset {perp.asset!r}",
                    )
        if chain.kamino is not None:
            for i, market_address in enumerate(chain.kamino.lending_markets):
                check_address(
                    ("chains", chain_key, "kamino", "lending_markets", i), chain_key, market_address
                )
            for i, reserve in enumerate(chain.kamino.reserves):
                loc = ("chains", chain_key, "kamino", "reserves", i)
                if reserve.asset not in model.assets:
                    problem((*loc, "asset"), f"unknown asset {reserve.asset!r}")
                check_address((*loc, "reserve"), chain_key, reserve.reserve)
        for coin, symbol in chain.perp_coins.items():
            if symbol not in model.assets:
                problem(("chains", chain_key, "perp_coins", coin), f"unknown asset {symbol!r}")
        if chain.family == "solana" and chain.genesis_hash is None:
            problem(("chains", chain_key, "genesis_hash"), "a solana chain needs genesis_hash")

    for symbol, asset in model.assets.items():
        for chain_key, dep in asset.deployments.items():
            loc = ("assets", symbol, "deployments", chain_key)
            deployed_on = model.chains.get(chain_key)
            if deployed_on is None:
                if chain_key not in declared:
                    problem(loc, f"asset {symbol} is deployed on unknown chain {chain_key!r}")
                continue
            if deployed_on.family == "hyperliquid":
                if not _is_coin_name(dep.address):
                    problem((*loc, "address"), "a HyperCore spot token is named by its coin (USDC)")
            elif dep.address != "native":
                check_address((*loc, "address"), chain_key, dep.address)
            if (
                deployed_on.family == "solana"
                and dep.address != "native"
                and dep.token_program is None
            ):
                problem((*loc, "token_program"), "a Solana mint needs token_program")
        if asset.price is None:
            problem(("assets", symbol, "price"), f"asset {symbol} has no price source")
        else:
            loc = ("assets", symbol, "price")
            if asset.price.chain not in model.chains:
                if asset.price.chain not in declared:
                    problem((*loc, "chain"), f"unknown chain {asset.price.chain!r}")
            else:
                family = model.chains[asset.price.chain].family
                if asset.price.kind != _PRICE_KIND_OF_FAMILY[family]:
                    problem((*loc, "kind"), f"{asset.price.kind} prices are not read on {family}")
                elif family == "hyperliquid":
                    if not _is_coin_name(asset.price.coin or ""):
                        problem((*loc, "coin"), "a hyperliquid price source needs coin")
                else:
                    check_address((*loc, "address"), asset.price.chain, asset.price.address)
                if asset.price.kind == "pyth" and asset.price.feed_id is None:
                    problem((*loc, "feed_id"), "a pyth price source needs feed_id")
    return problems
