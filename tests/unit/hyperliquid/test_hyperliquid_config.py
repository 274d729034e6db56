"""`family = "hyperliquid"` in config: network → CAIP-2 `hypercore:<network>`, finality latest
only, EIP-55 accounts, spot tokens named by coin, `hyperliquid` prices with a coin, and the
`config check` cross-checks naming the file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregator.addresses import AddressError, caip10, normalize_address
from aggregator.config import ConfigError, LoadedConfig, load_config
from aggregator.specs import chain_spec
from chains.hyperliquid.spec import MAINNET_INFO_URL, PerpCoin, PriceCoin, SpotToken

REPO = Path(__file__).resolve().parents[3]

GOOD = """
[chains.hl]
family = "hyperliquid"
network = "mainnet"
rpc_urls = ["https://api.hyperliquid.xyz/info"]
finality = "latest"
weight_per_minute = 600
perp_coins = { ETH = "ETH" }

[assets.USDC]
family = "USD"
stable = true
volatility = "0.02"
init_weight = "0.95"
maint_weight = "0.98"
init_liability_weight = "1.05"
maint_liability_weight = "1.02"
price = { kind = "hyperliquid", chain = "hl", coin = "USDC" }
deployments.hl = { address = "USDC", decimals = 8 }

[assets.ETH]
family = "ETH"
volatility = "0.8"
init_weight = "0.8"
maint_weight = "0.9"
init_liability_weight = "1.2"
maint_liability_weight = "1.1"
price = { kind = "hyperliquid", chain = "hl", coin = "ETH" }
"""


def _load(tmp_path: Path, text: str) -> LoadedConfig:
    path = tmp_path / "hl.toml"
    path.write_text(text)
    return load_config(path)


def _problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, text)
    return caught.value.problems


def test_a_hyperliquid_chain_loads_with_its_caip2_and_spec(tmp_path: Path) -> None:
    config = _load(tmp_path, GOOD)

    assert config.chains["hl"].caip2 == "hypercore:mainnet"
    spec = chain_spec(config, "hl")
    assert spec.caip2 == "hypercore:mainnet"
    assert spec.perp_coins == (PerpCoin("ETH", "ETH"),)
    assert spec.spot_tokens == (SpotToken("USDC", "USDC", 8),)
    assert spec.price_coins == (PriceCoin("USDC", "USDC"), PriceCoin("ETH", "ETH"))
    assert (spec.cash_asset, spec.cash_decimals, spec.weight_per_minute) == ("USDC", 8, 600)
    assert config.assets["ETH"].price is not None
    assert config.assets["ETH"].price.address == "ETH"  # the store keys price sources by it


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('finality = "latest"', 'finality = "finalized"', "hyperliquid is read at latest only"),
        ('finality = "latest"\n', "", 'needs finality = "latest"'),
        ('network = "mainnet"\n', "", "needs network"),
        ('network = "mainnet"', 'network = "hypercore"', "chains.hl.network"),
        (
            'coin = "ETH"',
            'coin = ""',
            "assets.ETH.price.coin: a hyperliquid price source needs coin",
        ),
        ('address = "USDC"', 'address = "native"', "named by its coin"),
        ('{ ETH = "ETH" }', '{ ETH = "WETH" }', "chains.hl.perp_coins.ETH: unknown asset 'WETH'"),
    ],
)
def test_bad_hyperliquid_config_is_one_line_naming_the_key(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    problems = _problems(tmp_path, GOOD.replace(old, new, 1))
    assert any(expected in problem for problem in problems), problems
    assert all("\n" not in problem and "hl.toml" in problem for problem in problems)


def test_a_hyperliquid_price_on_an_evm_chain_is_refused(tmp_path: Path) -> None:
    text = GOOD + '\n[chains.eth]\nfamily = "evm"\nchain_id = 1\nrpc_urls = ["https://e.example"]\n'
    text = text.replace('chain = "hl", coin = "ETH"', 'chain = "eth", coin = "ETH"')
    problems = _problems(tmp_path, text)
    assert any(
        "assets.ETH.price.kind: hyperliquid prices are not read on evm" in p for p in problems
    )


def test_perp_coins_belong_to_hyperliquid_chains(tmp_path: Path) -> None:
    evm = '[chains.eth]\nfamily = "evm"\nchain_id = 1\nrpc_urls = ["https://e.example"]\n'
    text = GOOD + "\n" + evm + 'perp_coins = { ETH = "ETH" }\n'
    assert any("perp_coins are for hyperliquid chains" in p for p in _problems(tmp_path, text))


def test_accounts_are_eip55_evm_addresses_and_caip10_speaks_hypercore() -> None:
    lower = "0x5e9ee1089755c3435139848e47e6635505d5a13a"
    checksummed = normalize_address("hyperliquid", lower, require_checksum=False)
    assert checksummed == "0x5E9EE1089755C3435139848e47e6635505D5a13A"
    assert normalize_address("hyperliquid", checksummed) == checksummed
    with pytest.raises(AddressError):
        normalize_address("hyperliquid", lower)  # not checksummed
    with pytest.raises(AddressError):
        normalize_address("hyperliquid", "9FjaYwjUghsWZAEVy3d8kWHYxGGc6RivgdohpcpeBv2K")
    assert caip10("hypercore:mainnet", checksummed) == f"hypercore:mainnet:{checksummed}"


def test_the_example_configs_have_hyperliquid() -> None:
    mainnet = load_config(REPO / "config" / "mainnet.example.toml")
    chain = mainnet.chains["hyperliquid"]
    assert chain.rpc_urls == [MAINNET_INFO_URL] == ["https://api.hyperliquid.xyz/info"]
    assert (chain.caip2, chain.finality, chain.weight_per_minute) == (
        "hypercore:mainnet",
        "latest",
        1200,
    )
    devnet = load_config(REPO / "config" / "devnet.toml")
    assert devnet.chains["devnet_hyperliquid"].caip2 == "hypercore:localnet"
