"""Config validation: every problem is one line naming the file and the key path."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from aggregator.config import ConfigError, load_config

REPO = Path(__file__).resolve().parents[3]

BASE = """
[risk]
latency_z = "2.326"
"""

GOOD = """
extends = "base.toml"

[chains.eth]
family = "evm"
chain_id = 1
rpc_urls = ["https://a.example", "https://b.example"]
finality = "latest-3"

[chains.sol]
family = "solana"
genesis_hash = "5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"
rpc_urls = ["https://s.example"]
finality = "confirmed"

[assets.USDC]
family = "USD"
stable = true
volatility = "0.02"
init_weight = "0.95"
maint_weight = "0.98"
init_liability_weight = "1.05"
maint_liability_weight = "1.02"
tiers = [["0", "100000", "1.0"], ["100000", "500000", "0.9"], ["500000", "inf", "0.5"]]
price.kind = "chainlink"
price.chain = "eth"
price.address = "0x8fFfFfd4AfB6115b954Bd326cbe7B4BA576818f6"
deployments.eth = { address = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", decimals = 6 }
deployments.sol.address = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
deployments.sol.decimals = 6
deployments.sol.token_program = "spl_token"
"""


def _write(tmp_path: Path, text: str, base: str = BASE) -> Path:
    (tmp_path / "base.toml").write_text(base)
    path = tmp_path / "x.toml"
    path.write_text(text)
    return path


def _problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.problems


@pytest.mark.parametrize("name", ["devnet.toml", "mainnet.example.toml", "default.toml"])
def test_shipped_configs_are_valid(name: str) -> None:
    load_config(REPO / "config" / name)


def test_good_config_loads_with_caip2_ids_tiers_and_base_defaults(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, GOOD))
    assert config.chains["eth"].caip2 == "eip155:1"
    assert config.chains["sol"].caip2 == "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"
    assert config.assets["USDC"].tiers[2] == (Decimal(500000), None, Decimal("0.5"))
    assert config.risk.latency_z == Decimal("2.326")
    assert config.risk.max_conf_ratio == Decimal("0.10")  # a model default


def test_unknown_key_is_named_with_its_path(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace('finality = "latest-3"', 'finalty = "latest"'))
    assert _problems(path) == [f"{path}: chains.eth.finalty: unknown key"]


def test_a_problem_in_the_base_file_names_the_base_file(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD, base='[risk]\nlatency_z = "-1"\n')
    (problem,) = _problems(path)
    assert problem.startswith(f"{tmp_path / 'base.toml'}: risk.latency_z: ")


def test_non_checksummed_and_malformed_addresses(tmp_path: Path) -> None:
    text = GOOD.replace(
        "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
    ).replace("EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", "not-base58-0OIl")
    path = _write(tmp_path, text)
    assert _problems(path) == [
        f"{path}: assets.USDC.deployments.eth.address: "
        "EVM address '0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48' is not EIP-55 checksummed "
        "(expected 0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48)",
        f"{path}: assets.USDC.deployments.sol.address: "
        "'not-base58-0OIl' is not a base58 Solana public key",
    ]


def test_asset_on_unknown_chain_and_missing_price_source(tmp_path: Path) -> None:
    text = GOOD.replace("deployments.sol.", "deployments.polygon.").replace(
        'price.kind = "chainlink"\nprice.chain = "eth"\n'
        'price.address = "0x8fFfFfd4AfB6115b954Bd326cbe7B4BA576818f6"\n',
        "",
    )
    path = _write(tmp_path, text)
    assert _problems(path) == [
        f"{path}: assets.USDC.deployments.polygon: asset USDC is deployed on unknown chain "
        "'polygon'",
        f"{path}: assets.USDC.price: asset USDC has no price source",
    ]


def test_weights_out_of_order(tmp_path: Path) -> None:
    text = GOOD.replace('init_weight = "0.95"', 'init_weight = "0.99"').replace(
        'init_liability_weight = "1.05"', 'init_liability_weight = "1.01"'
    )
    path = _write(tmp_path, text)
    assert _problems(path) == [
        f"{path}: assets.USDC.init_weight: init_weight 0.99 > maint_weight 0.98: "
        "the initial weight must not exceed the maintenance weight",
        f"{path}: assets.USDC.init_liability_weight: init_liability_weight 1.01 < "
        "maint_liability_weight 1.02: the initial liability weight must not be below the "
        "maintenance one",
    ]


def test_finality_per_family_and_solana_genesis(tmp_path: Path) -> None:
    text = GOOD.replace('finality = "latest-3"', 'finality = "soon"').replace(
        'genesis_hash = "5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"\n', ""
    )
    path = _write(tmp_path, text)
    assert _problems(path) == [
        f"{path}: chains.eth.finality: 'soon': use finalized, safe, latest or latest-N",
        f"{path}: chains.sol.genesis_hash: a solana chain needs genesis_hash",
    ]


def test_tiers_must_be_contiguous(tmp_path: Path) -> None:
    text = GOOD.replace('["100000", "500000", "0.9"]', '["200000", "500000", "0.9"]')
    path = _write(tmp_path, text)
    assert _problems(path) == [
        f"{path}: assets.USDC.tiers: tier 1 starts at 200000, expected 100000"
    ]


def test_missing_file_and_bad_toml(tmp_path: Path) -> None:
    assert _problems(tmp_path / "nope.toml") == [f"{tmp_path / 'nope.toml'}: file not found"]
    path = _write(tmp_path, "[chains\n")
    (problem,) = _problems(path)
    assert problem.startswith(f"{path}: not valid TOML")
