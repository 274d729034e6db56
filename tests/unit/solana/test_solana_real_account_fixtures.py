"""The copied real-account fixtures are intact and each names its source file."""

from __future__ import annotations

import hashlib

import pytest
from solana_real_accounts import REAL_ACCOUNTS, real_account, real_bytes

FILES = sorted(path.name for path in REAL_ACCOUNTS.glob("*.json"))
SIZES = {
    "Reserve": 8624,
    "Obligation": 3344,
    "Bank": 1864,
    "MarginfiAccount": 2312,
    "SpotMarket": 776,
    "PerpMarket": 1216,
}


def test_every_venue_and_account_type_is_present() -> None:
    assert len(FILES) == 17
    assert {real_account(name)["account_type"] for name in FILES} == set(SIZES)


@pytest.mark.parametrize("name", FILES)
def test_fixture_bytes_match_their_hash_size_and_anchor_discriminator(name: str) -> None:
    fixture = real_account(name)
    data = real_bytes(name)  # checks data_len and data_sha256

    kind = fixture["account_type"]
    assert len(data) == SIZES[kind]
    assert data[:8] == hashlib.sha256(f"account:{kind}".encode()).digest()[:8]
    assert data[:8].hex() == fixture["anchor_discriminator_hex"]


@pytest.mark.parametrize("name", FILES)
def test_readme_names_the_shared_source_file_and_the_sha256_of_each_copy(name: str) -> None:
    readme = (REAL_ACCOUNTS / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith(f"| `{name}` |"))
    assert f"`/work/shared/fixtures/solana_real_accounts/{name}`" in row
    digest = hashlib.sha256((REAL_ACCOUNTS / name).read_bytes()).hexdigest()
    assert f"`{digest[:16]}`" in row
