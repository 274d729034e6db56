"""MarginFi MarginfiAccount and Bank layouts, and shares → tokens.

The fixtures hold MarginFi layout facts (solana_lending_layouts.json "marginfi_account": size,
discriminator, offsets from mrgnlabs/marginfi-v2 type-crate) but no real account dump, so the
decoder is pinned to the stated offsets by writing bytes there by hand. The Bank offsets come
from type-crate/src/types/bank.rs (mint, mint_decimals u8, group, 7 bytes padding, then the two
I80F48 share values) with upstream assert_struct_size!(Bank, 1856).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from solana_fixtures import load
from solders.pubkey import Pubkey

from chains.base import Address, EndpointPolicy
from chains.solana.decoders import AccountDecodeError
from chains.solana.decoders.marginfi import (
    ACCOUNT_DISCRIMINATOR,
    ACCOUNT_LEN,
    BANK_DISCRIMINATOR,
    BANK_LEN,
    account_address,
    decode_account,
    decode_bank,
    encode_account,
    encode_bank,
)
from chains.solana.lines import RawAccount, build_lines
from chains.solana.plan import build_plan
from chains.solana.spec import MarginfiBank, MarginfiVenue, SolanaChainSpec

LAYOUT = load("solana_lending_layouts.json")["marginfi_account"]
ONE = 1 << 48  # I80F48 1.0


def test_stated_sizes_and_discriminators() -> None:
    assert ACCOUNT_LEN == LAYOUT["account_data_len"] == 2312
    assert ACCOUNT_DISCRIMINATOR.hex() == LAYOUT["discriminator"].split()[0]
    assert BANK_LEN == 1856 + 8
    assert BANK_DISCRIMINATOR == hashlib.sha256(b"account:Bank").digest()[:8]


def test_balances_are_read_at_the_stated_offsets() -> None:
    offsets = LAYOUT["offsets_in_account_data"]
    balance = LAYOUT["Balance (104)"]
    assert (offsets["group"], offsets["authority"]) == (8, 40)
    assert offsets["lending_account.balances [Balance;16] (104 each)"] == "72 + 104*i"
    asset_at = balance["asset_shares I80F48 (16 bytes LE, signed i128 / 2**48)"]
    liability_at = balance["liability_shares I80F48"]
    data = bytearray(ACCOUNT_LEN)
    data[:8] = ACCOUNT_DISCRIMINATOR
    group, authority, bank = Pubkey.new_unique(), Pubkey.new_unique(), Pubkey.new_unique()
    data[8:40], data[40:72] = bytes(group), bytes(authority)
    slot = 72 + 104 * 3  # slots 0-2 stay inactive
    data[slot + balance["active u8"]] = 1
    data[slot + balance["bank_pk Pubkey"] : slot + 33] = bytes(bank)
    data[slot + asset_at : slot + asset_at + 16] = (1_500 * ONE + ONE // 4).to_bytes(16, "little")
    data[slot + liability_at : slot + liability_at + 16] = (7 * ONE).to_bytes(16, "little")
    data[offsets["account_flags u64"]] = 0b10

    account = decode_account(bytes(data))

    assert (account.group, account.authority, account.flags) == (str(group), str(authority), 2)
    assert [(b.bank, b.asset_shares, b.liability_shares) for b in account.balances] == [
        (str(bank), 1_500 * ONE + ONE // 4, 7 * ONE)
    ]


def test_shares_times_share_value_rounds_deposits_down_and_debts_up() -> None:
    bank = decode_bank(
        encode_bank(
            mint=Pubkey.new_unique(),
            mint_decimals=6,
            group=Pubkey.new_unique(),
            asset_share_value=ONE * 17 // 16,  # 1.0625
            liability_share_value=ONE * 9 // 8 + 1,  # a hair over 1.125
        )
    )
    assert bank.mint_decimals == 6
    assert bank.asset_amount(2_000 * ONE) == 2_125
    assert bank.asset_amount(3 * ONE) == 3  # 3.1875 rounded down
    assert bank.liability_amount(8 * ONE) == 10  # 9.000...03 rounded up
    assert bank.liability_amount(0) == 0


def test_bank_fields_are_read_at_their_offsets() -> None:
    data = bytearray(BANK_LEN)
    data[:8] = BANK_DISCRIMINATOR
    mint, group = Pubkey.new_unique(), Pubkey.new_unique()
    data[8:40], data[40], data[41:73] = bytes(mint), 9, bytes(group)
    data[80:96] = (2 * ONE).to_bytes(16, "little")
    data[96:112] = (3 * ONE).to_bytes(16, "little")
    bank = decode_bank(bytes(data))
    assert (bank.mint, bank.mint_decimals, bank.group) == (str(mint), 9, str(group))
    assert (bank.asset_amount(5 * ONE), bank.liability_amount(5 * ONE)) == (10, 15)


@pytest.mark.parametrize(
    ("decode", "data", "message"),
    [
        (decode_account, ACCOUNT_DISCRIMINATOR + bytes(10), "18 bytes"),
        (decode_account, bytes(ACCOUNT_LEN), "discriminator"),
        (decode_bank, BANK_DISCRIMINATOR + bytes(BANK_LEN - 8), "share value is not positive"),
        (decode_bank, bytes(BANK_LEN), "discriminator"),
    ],
    ids=["account-size", "account-discriminator", "bank-zero-share-value", "bank-discriminator"],
)
def test_bad_bytes_are_rejected(
    decode: Callable[[bytes], object], data: bytes, message: str
) -> None:
    with pytest.raises(AccountDecodeError, match=message):
        decode(data)


PROGRAM = "MFv2hWf31Z9kbCa1snEPYctwafyhdvnV7FZnsebVacA"
GROUP = Pubkey.new_unique()
USDC_BANK, SOL_BANK, WALLET = Pubkey.new_unique(), Pubkey.new_unique(), Pubkey.new_unique()
SPEC = SolanaChainSpec(
    chain="t",
    genesis_hash="x" * 32,
    endpoints=EndpointPolicy(urls=("http://127.0.0.1:1",)),
    marginfi=MarginfiVenue(
        program_id=PROGRAM,
        group=str(GROUP),
        banks=(MarginfiBank(str(USDC_BANK), "USDC", 6), MarginfiBank(str(SOL_BANK), "SOL", 9)),
        discover_accounts=False,
    ),
    discover_token_accounts=False,
    native_balances=False,
)
ACCOUNT = str(account_address(Pubkey.from_string(PROGRAM), GROUP, WALLET))


def _bank(mint_decimals: int, value: int, group: Pubkey = GROUP) -> RawAccount:
    data = encode_bank(
        mint=Pubkey.new_unique(),
        mint_decimals=mint_decimals,
        group=group,
        asset_share_value=value,
        liability_share_value=value,
    )
    return RawAccount(PROGRAM, 0, data)


def _lines(sol_bank: RawAccount | None) -> tuple[dict[tuple[str, str], int], list[str]]:
    account = encode_account(
        group=GROUP,
        authority=WALLET,
        balances=((USDC_BANK, 100 * 10**6 * ONE, 0), (SOL_BANK, 0, 2 * 10**9 * ONE)),
    )
    accounts = {
        str(USDC_BANK): _bank(6, ONE * 3 // 2),
        str(SOL_BANK): sol_bank,
        ACCOUNT: RawAccount(PROGRAM, 0, account),
    }
    plan = build_plan(SPEC, [Address(str(WALLET))])
    lines = build_lines(SPEC, plan, accounts, block_time=0)
    positions: dict[tuple[str, str], int] = {
        (p.asset, p.kind): p.amount_raw for p in lines.positions
    }
    return positions, [f"{issue.subject}: {issue.message}" for issue in lines.issues]


def test_marginfi_account_lines_are_token_amounts() -> None:
    positions, issues = _lines(_bank(9, ONE * 5 // 4))
    assert positions == {
        ("USDC", "deposit"): 150 * 10**6,  # 100 shares x 1.5
        ("SOL", "borrow"): -(25 * 10**8),  # 2 shares x 1.25
    }
    assert issues == []


@pytest.mark.parametrize(
    ("sol_bank", "reason"),
    [
        (RawAccount(PROGRAM, 0, bytes(BANK_LEN)), "discriminator mismatch"),
        (_bank(6, ONE), "has 6 dp, configured 9"),
        (_bank(9, ONE, group=Pubkey.new_unique()), "belongs to group"),
        (None, "account not found"),
    ],
    ids=["corrupt", "decimals", "other-group", "missing"],
)
def test_an_unreadable_bank_skips_only_its_balance(
    sol_bank: RawAccount | None, reason: str
) -> None:
    positions, issues = _lines(sol_bank)
    assert positions == {("USDC", "deposit"): 150 * 10**6}
    assert len(issues) == 2
    assert issues[0].startswith(f"{SOL_BANK}: MarginFi bank SOL") and reason in issues[0]
    assert issues[1] == (
        f"{ACCOUNT}: MarginFi SOL balance of {WALLET} skipped: bank {SOL_BANK} could not be read"
    )
