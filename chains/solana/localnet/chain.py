"""`LocalSolana`: a LiteSVM chain with a JSON-RPC endpoint, and the calls tests and the demo use.

Token mints and accounts are created by the real SPL Token / Token-2022 and Associated Token
Account programs (LiteSVM ships them) through signed transactions. Oracle and protocol accounts
(Pyth PriceUpdateV2, Drift User/SpotMarket/PerpMarket, Kamino Obligation/Reserve, MarginFi
Account/Bank) are written with their real layouts and owner programs via `set_account`, since
those programs are not loaded. Drift markets and MarginFi banks can name the oracle account they
price from, and Kamino reserves hold their own market price, as the venues' accounts do.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from decimal import Decimal
from types import TracebackType
from typing import Literal

from solders.account import Account
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import CreateAccountParams, create_account
from solders.transaction import Transaction
from solders.transaction_metadata import FailedTransactionMetadata
from spl.token.instructions import (
    create_idempotent_associated_token_account,
    initialize_mint2,
    mint_to,
    transfer_checked,
)
from spl.token.models import InitializeMint2Params, MintToParams, TransferCheckedParams

from chains.solana.decoders import drift, kamino, marginfi, pyth
from chains.solana.decoders.spl_token import associated_token_address, encode_token_account
from chains.solana.localnet import layouts
from chains.solana.localnet.ledger import Ledger
from chains.solana.localnet.pubsub import PubSubServer
from chains.solana.localnet.server import RpcServer
from chains.solana.plan import perp_market_address
from chains.solana.spec import PYTH_RECEIVER_PROGRAM, SPL_TOKEN_PROGRAM

MINT_LEN = 82
SYSTEM_PROGRAM = Pubkey.default()
DRIFT_PROGRAM = "dRiftyHA39MWEi3m9aunc5MzRF1JYuBsbn6VPcn33UH"
KAMINO_PROGRAM = "KLend2g3cP87fffoy8q1mQqGKjrxjC8boSyAYavgmjD"
MARGINFI_PROGRAM = "MFv2hWf31Z9kbCa1snEPYctwafyhdvnV7FZnsebVacA"


class LocalChainError(RuntimeError):
    """A transaction on the local chain failed."""


def keypair_from_seed(seed: str | bytes) -> Keypair:
    """A deterministic keypair: ed25519 seed = sha256(seed)."""
    raw = seed.encode() if isinstance(seed, str) else seed
    return Keypair.from_seed(hashlib.sha256(raw).digest())


def _key(value: Pubkey | str) -> Pubkey:
    return value if isinstance(value, Pubkey) else Pubkey.from_string(value)


class LocalSolana:
    """A local Solana chain served over JSON-RPC at `.url` (in a background thread).

    `finalized` reads lag the processed slot by `finalized_lag` slots and `confirmed` reads by
    `confirmed_lag`: a write is visible at `finalized` after `advance_slots(finalized_lag)`.

    With `pubsub_port` (0: any free port) it also serves Solana's RPC PubSub websocket at
    `.ws_url` (`accountSubscribe`, `programSubscribe`: `localnet.pubsub`); without it,
    `.ws_url` is None and there is no websocket, as on an endpoint that offers none.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        confirmed_lag: int = 1,
        finalized_lag: int = 4,
        start: bool = True,
        genesis_unix_time: int | None = None,
        pubsub_port: int | None = None,
    ) -> None:
        self.ledger = (
            Ledger(confirmed_lag=confirmed_lag, finalized_lag=finalized_lag)
            if genesis_unix_time is None
            else Ledger(
                confirmed_lag=confirmed_lag,
                finalized_lag=finalized_lag,
                genesis_unix_time=genesis_unix_time,
            )
        )
        self.payer = keypair_from_seed("xmargin-localnet:payer")
        self._mint_programs: dict[str, Pubkey] = {}
        self.airdrop(self.payer.pubkey(), 100_000 * 10**9)  # the faucet holds 1,000,000 SOL
        self._server = RpcServer(self.ledger, host, port)
        self.url = self._server.url
        self.pubsub = (
            PubSubServer(self.ledger, host, pubsub_port) if pubsub_port is not None else None
        )
        self.ws_url = self.pubsub.url if self.pubsub is not None else None
        if start:
            self._server.start()
            if self.pubsub is not None:
                self.pubsub.start()

    # lifecycle -------------------------------------------------------------------------------
    def serve_forever(self) -> None:
        """Serve on the calling thread (used by `python -m chains.solana.localnet`); the
        PubSub endpoint, if any, on its own thread."""
        if self.pubsub is not None:
            self.pubsub.start()
        self._server.serve_forever()

    def close(self) -> None:
        self._server.stop()
        if self.pubsub is not None:
            self.pubsub.stop()

    def __enter__(self) -> LocalSolana:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # request statistics ----------------------------------------------------------------------
    def rpc_calls(self) -> dict[str, int]:
        """JSON-RPC calls served so far, per method, plus `getMultipleAccounts.keys`: the number
        of account keys asked over all getMultipleAccounts calls."""
        methods = self._server.methods
        with self.ledger.lock:
            calls = dict(methods.calls)
            calls["getMultipleAccounts.keys"] = methods.multiple_accounts_keys
        return calls

    def reset_rpc_calls(self) -> None:
        methods = self._server.methods
        with self.ledger.lock:
            methods.calls.clear()
            methods.multiple_accounts_keys = 0

    # slots ---------------------------------------------------------------------------------
    @property
    def slot(self) -> int:
        """The processed slot."""
        return self.ledger.processed_slot

    def advance_slots(self, count: int = 1) -> int:
        """Produce `count` empty slots; returns the new processed slot."""
        return self.ledger.advance_slots(count)

    def skip_slot(self, slot: int) -> None:
        """Make the finalized chain skip `slot`: a block read there at `confirmed` lost its fork
        (`getBlocks` no longer lists it)."""
        self.ledger.skip_slot(slot)

    def finalize(self) -> int:
        """Advance far enough that everything written so far is visible at `finalized`."""
        return self.advance_slots(self.ledger.finalized_lag + 1)

    def block_time(self, slot: int | None = None) -> int:
        return self.ledger.block_time(self.slot if slot is None else slot)

    # transactions --------------------------------------------------------------------------
    def _send(self, instructions: list[Instruction], signers: Iterable[Keypair]) -> None:
        with self.ledger.lock:
            svm = self.ledger.svm
            svm.expire_blockhash()  # identical instructions twice must not be a duplicate tx
            message = Message.new_with_blockhash(
                instructions, self.payer.pubkey(), svm.latest_blockhash()
            )
            keys = list(message.account_keys)
            self.ledger.snapshot_before(keys)
            transaction = Transaction([self.payer, *signers], message, svm.latest_blockhash())
            result = svm.send_transaction(transaction)
            if isinstance(result, FailedTransactionMetadata):
                raise LocalChainError(f"transaction failed: {result.err()}; logs {result.meta()}")
            self.ledger.record(keys)

    def airdrop(self, wallet: Pubkey | str, lamports: int) -> None:
        """Credit `lamports` SOL lamports to `wallet` (a system transfer from the faucet)."""
        key = _key(wallet)
        with self.ledger.lock:
            faucet = self.ledger.svm.airdrop_pubkey()
            self.ledger.snapshot_before([key, faucet])
            self.ledger.svm.expire_blockhash()
            result = self.ledger.svm.airdrop(key, lamports)
            if isinstance(result, FailedTransactionMetadata):
                if "InsufficientFundsForRent" not in str(result.err()):
                    raise LocalChainError(f"airdrop failed: {result.err()}")
                # Below the rent-exempt minimum the runtime refuses a transfer into a new
                # account; tests still want exact small balances, so write the account.
                current = self.ledger.svm.get_account(key)
                balance = current.lamports if current is not None else 0
                self.ledger.write(key, Account(balance + lamports, b"", SYSTEM_PROGRAM, False, 0))
                return
            self.ledger.record([key, faucet])

    def create_mint(
        self, decimals: int, token_program: str = SPL_TOKEN_PROGRAM, seed: str = "mint"
    ) -> Pubkey:
        """Create a mint at the address of `keypair_from_seed(seed)`, mint authority the payer.

        May raise: LocalChainError.
        """
        mint = keypair_from_seed(seed)
        program = Pubkey.from_string(token_program)
        rent = self.ledger.svm.minimum_balance_for_rent_exemption(MINT_LEN)
        self._send(
            [
                create_account(
                    CreateAccountParams(
                        from_pubkey=self.payer.pubkey(),
                        to_pubkey=mint.pubkey(),
                        lamports=rent,
                        space=MINT_LEN,
                        owner=program,
                    )
                ),
                initialize_mint2(
                    InitializeMint2Params(
                        decimals=decimals,
                        program_id=program,
                        mint=mint.pubkey(),
                        mint_authority=self.payer.pubkey(),
                    )
                ),
            ],
            [mint],
        )
        self._mint_programs[str(mint.pubkey())] = program
        return mint.pubkey()

    def token_program_of(self, mint: Pubkey | str) -> Pubkey:
        """The token program owning `mint`. May raise: KeyError (no such mint)."""
        account = self.ledger.svm.get_account(_key(mint))
        if account is None:
            raise KeyError(f"mint {mint} does not exist")
        return account.owner

    def ata(self, owner: Pubkey | str, mint: Pubkey | str) -> Pubkey:
        """The associated token account of `owner` for `mint` (under the mint's program)."""
        return associated_token_address(_key(owner), _key(mint), self.token_program_of(mint))

    def mint_to(self, owner: Pubkey | str, mint: Pubkey | str, amount: int) -> Pubkey:
        """Create `owner`'s ATA if needed (ATA program) and mint `amount` into it.

        Returns the ATA. May raise: LocalChainError, KeyError (unknown mint).
        """
        owner_key, mint_key = _key(owner), _key(mint)
        program = self.token_program_of(mint_key)
        destination = associated_token_address(owner_key, mint_key, program)
        self._send(
            [
                create_idempotent_associated_token_account(
                    self.payer.pubkey(), owner_key, mint_key, program
                ),
                mint_to(
                    MintToParams(
                        program_id=program,
                        mint=mint_key,
                        dest=destination,
                        mint_authority=self.payer.pubkey(),
                        amount=amount,
                    )
                ),
            ],
            [],
        )
        return destination

    def transfer_tokens(
        self, owner: Keypair, destination_owner: Pubkey | str, mint: Pubkey | str, amount: int
    ) -> Pubkey:
        """Move `amount` of `mint` from `owner`'s ATA to `destination_owner`'s (created if
        needed), signed by `owner`: a real `TransferChecked` of the mint's token program.

        Returns the destination ATA. May raise: LocalChainError, KeyError (unknown mint).
        """
        destination_key, mint_key = _key(destination_owner), _key(mint)
        program = self.token_program_of(mint_key)
        account = self.ledger.svm.get_account(mint_key)
        assert account is not None  # token_program_of found it
        decimals = bytes(account.data)[44]
        source = associated_token_address(owner.pubkey(), mint_key, program)
        destination = associated_token_address(destination_key, mint_key, program)
        self._send(
            [
                create_idempotent_associated_token_account(
                    self.payer.pubkey(), destination_key, mint_key, program
                ),
                transfer_checked(
                    TransferCheckedParams(
                        program_id=program,
                        source=source,
                        mint=mint_key,
                        dest=destination,
                        owner=owner.pubkey(),
                        amount=amount,
                        decimals=decimals,
                    )
                ),
            ],
            [owner],
        )
        return destination

    # raw-layout accounts ---------------------------------------------------------------------
    def set_raw_account(
        self, address: Pubkey | str, data: bytes, owner: Pubkey | str, lamports: int | None = None
    ) -> None:
        """Write any bytes under any owner (for bad-data tests and the layouts below)."""
        rent = self.ledger.svm.minimum_balance_for_rent_exemption(len(data))
        self.ledger.write(
            _key(address),
            Account(lamports if lamports is not None else rent, data, _key(owner), False, 0),
        )

    def set_token_accounts(
        self, entries: Iterable[tuple[Pubkey, Pubkey, Pubkey, int]], token_program: str
    ) -> None:
        """Bulk-write token accounts (address, mint, owner, amount) with the real 165-byte
        layout owned by `token_program`, without transactions (for the benchmark)."""
        program = Pubkey.from_string(token_program)
        rent = self.ledger.svm.minimum_balance_for_rent_exemption(165)
        with self.ledger.lock:
            for address, mint, owner, amount in entries:
                data = encode_token_account(mint, owner, amount)
                self.ledger.write(address, Account(rent, data, program, False, 0))

    def set_pyth_price(
        self,
        account: Pubkey | str,
        feed_id: str | bytes,
        price: int,
        conf: int,
        expo: int,
        publish_time: int,
        *,
        owner: str = PYTH_RECEIVER_PROGRAM,
        verification_level: Literal["Full", "Partial"] = "Full",
    ) -> None:
        """Write a PriceUpdateV2 account (real 134-byte layout) owned by `owner`."""
        feed = bytes.fromhex(feed_id.removeprefix("0x")) if isinstance(feed_id, str) else feed_id
        data = pyth.encode_price_update_v2(
            write_authority=_key(account),
            feed_id=feed,
            price=price,
            conf=conf,
            exponent=expo,
            publish_time=publish_time,
            posted_slot=self.slot,
            verification_level=verification_level,
            num_signatures=3,
        )
        self.set_raw_account(account, data, owner)

    def set_drift_spot_market(
        self,
        market_index: int,
        mint: Pubkey | str,
        decimals: int,
        *,
        cumulative_deposit_interest: int = 10**10,
        cumulative_borrow_interest: int = 10**10,
        weights: tuple[int, int, int, int] = (10_000, 10_000, 10_000, 10_000),
        imf_factor: int = 0,
        name: str = "",
        oracle: Pubkey | str | None = None,
        oracle_source: str = "Pyth",
        program_id: str = DRIFT_PROGRAM,
    ) -> Pubkey:
        """Write a SpotMarket at its PDA; interest in SPOT_CUMULATIVE_INTEREST_PRECISION (1e10).
        `weights`: (initial asset, maintenance asset, initial liability, maintenance
        liability) in MARGIN_PRECISION (1e4 = 100 %); the default is Drift's quote market's.
        `oracle` / `oracle_source`: the account the market prices from and how Drift reads it
        (a Drift `OracleSource` name; without an oracle the market names the default key).
        May raise: ValueError (unknown oracle source)."""
        program = Pubkey.from_string(program_id)
        address = drift.spot_market_address(program, market_index)
        initial_asset, maintenance_asset, initial_liability, maintenance_liability = weights
        data = drift.encode_spot_market(
            address=address,
            mint=_key(mint),
            market_index=market_index,
            decimals=decimals,
            cumulative_deposit_interest=cumulative_deposit_interest,
            cumulative_borrow_interest=cumulative_borrow_interest,
            name=name,
            initial_asset_weight=initial_asset,
            maintenance_asset_weight=maintenance_asset,
            initial_liability_weight=initial_liability,
            maintenance_liability_weight=maintenance_liability,
            imf_factor=imf_factor,
            oracle=_key(oracle) if oracle is not None else None,
        )
        self.set_raw_account(address, layouts.with_spot_oracle_source(data, oracle_source), program)
        return address

    def set_drift_perp_market(
        self,
        market_index: int,
        oracle: Pubkey | str,
        *,
        oracle_source: str = "PythPull",
        margin_ratios: tuple[int, int] = (500, 300),
        imf_factor: int = 0,
        liquidator_fee: int = 0,
        if_liquidation_fee: int = 0,
        unrealized_pnl_maintenance_asset_weight: int = drift.MARGIN_PRECISION,
        name: str = "",
        program_id: str = DRIFT_PROGRAM,
    ) -> Pubkey:
        """Write an active PerpMarket (real 1,216-byte layout) at its PDA, priced from `oracle`
        read as `oracle_source`. `margin_ratios`: (initial, maintenance) in MARGIN_PRECISION
        (1e4); imf factor and fees in 1e6. May raise: ValueError (unknown oracle source)."""
        program = Pubkey.from_string(program_id)
        address = perp_market_address(program, market_index)
        initial, maintenance = margin_ratios
        data = layouts.encode_drift_perp_market(
            address=address,
            market_index=market_index,
            oracle=_key(oracle),
            oracle_source=oracle_source,
            name=name,
            margin_ratio_initial=initial,
            margin_ratio_maintenance=maintenance,
            imf_factor=imf_factor,
            liquidator_fee=liquidator_fee,
            if_liquidation_fee=if_liquidation_fee,
            unrealized_pnl_maintenance_asset_weight=unrealized_pnl_maintenance_asset_weight,
        )
        self.set_raw_account(address, data, program)
        return address

    def set_drift_user(
        self,
        authority: Pubkey | str,
        *,
        sub_account_id: int = 0,
        spot: tuple[tuple[int, int, Literal["deposit", "borrow"]], ...] = (),
        perp: tuple[tuple[int, int, int, int], ...] = (),
        program_id: str = DRIFT_PROGRAM,
    ) -> Pubkey:
        """Write a User at its PDA (authority, sub account). `spot`: (market_index,
        scaled_balance 1e9, kind); `perp`: (market_index, base 1e9, quote 1e6, quote_entry 1e6)."""
        program = Pubkey.from_string(program_id)
        address = drift.user_address(program, _key(authority), sub_account_id)
        data = drift.encode_user(
            authority=_key(authority), sub_account_id=sub_account_id, spot=spot, perp=perp
        )
        self.set_raw_account(address, data, program)
        return address

    def set_kamino_obligation(
        self,
        owner: Pubkey | str,
        lending_market: Pubkey | str,
        *,
        deposits: tuple[tuple[Pubkey, int, int], ...] = (),
        borrows: tuple[tuple[Pubkey, int, int], ...] = (),
        program_id: str = KAMINO_PROGRAM,
    ) -> Pubkey:
        """Write a vanilla Obligation at its PDA. `deposits`: (reserve, collateral amount,
        market_value_sf); `borrows`: (reserve, borrowed_amount_sf, market_value_sf)."""
        program = Pubkey.from_string(program_id)
        address = kamino.obligation_address(program, _key(owner), _key(lending_market))
        data = kamino.encode_obligation(
            lending_market=_key(lending_market),
            owner=_key(owner),
            deposits=deposits,
            borrows=borrows,
        )
        self.set_raw_account(address, data, program)
        return address

    def set_kamino_reserve(
        self,
        reserve: Pubkey | str,
        lending_market: Pubkey | str,
        liquidity_mint: Pubkey | str,
        mint_decimals: int,
        *,
        available_amount: int,
        borrowed_amount_sf: int = 0,
        collateral_supply: int,
        accumulated_protocol_fees_sf: int = 0,
        accumulated_referrer_fees_sf: int = 0,
        pending_referrer_fees_sf: int = 0,
        collateral_mint: Pubkey | str | None = None,
        token_program: str = SPL_TOKEN_PROGRAM,
        loan_to_value_pct: int = 0,
        liquidation_threshold_pct: int = 0,
        borrow_factor_pct: int = 100,
        market_price_sf: int = 0,
        market_price_updated_ts: int = 0,
        program_id: str = KAMINO_PROGRAM,
    ) -> Pubkey:
        """Write a Reserve (real 8,624-byte layout) at `reserve`, owned by the klend program.

        Exchange rate: (available + borrowed_sf/2^60 - fees_sf/2^60) liquidity base units per
        `collateral_supply` collateral tokens. `collateral_mint` defaults to a key derived from
        the reserve (klend's is a PDA; nothing here reads it). Risk parameters as klend's
        config: LTV <= liquidation threshold <= 100 %, borrow factor >= 100 %; the defaults
        are a reserve that cannot back a borrow. `market_price_sf`: the reserve's own price, USD
        per whole token x 2**60 (0: never refreshed, no price)."""
        reserve_key = _key(reserve)
        collateral = (
            _key(collateral_mint)
            if collateral_mint is not None
            else keypair_from_seed(b"kamino-collateral:" + bytes(reserve_key)).pubkey()
        )
        data = kamino.encode_reserve(
            lending_market=_key(lending_market),
            liquidity_mint=_key(liquidity_mint),
            mint_decimals=mint_decimals,
            available_amount=available_amount,
            borrowed_amount_sf=borrowed_amount_sf,
            collateral_mint=collateral,
            collateral_supply=collateral_supply,
            accumulated_protocol_fees_sf=accumulated_protocol_fees_sf,
            accumulated_referrer_fees_sf=accumulated_referrer_fees_sf,
            pending_referrer_fees_sf=pending_referrer_fees_sf,
            token_program=Pubkey.from_string(token_program),
            loan_to_value_pct=loan_to_value_pct,
            liquidation_threshold_pct=liquidation_threshold_pct,
            borrow_factor_pct=borrow_factor_pct,
        )
        data = layouts.with_reserve_market_price(data, market_price_sf, market_price_updated_ts)
        self.set_raw_account(reserve_key, data, Pubkey.from_string(program_id))
        return reserve_key

    def set_kamino_market_price(
        self, reserve: Pubkey | str, market_price_sf: int, updated_ts: int
    ) -> None:
        """Set an existing Reserve's `market_price_sf` (USD per whole token x 2**60) and its
        `market_price_last_updated_ts`, as klend's refresh does. May raise: KeyError (no such
        account)."""
        key = _key(reserve)
        with self.ledger.lock:
            account = self.ledger.svm.get_account(key)
            if account is None:
                raise KeyError(f"Kamino reserve {reserve} does not exist")
            data = layouts.with_reserve_market_price(
                bytes(account.data), market_price_sf, updated_ts
            )
            self.set_raw_account(key, data, account.owner, account.lamports)

    def set_marginfi_bank(
        self,
        bank: Pubkey | str,
        group: Pubkey | str,
        mint: Pubkey | str,
        mint_decimals: int,
        *,
        asset_share_value: int = marginfi.I80F48_ONE,
        liability_share_value: int = marginfi.I80F48_ONE,
        weights: tuple[Decimal, Decimal, Decimal, Decimal] = (
            Decimal(0),
            Decimal(0),
            Decimal(1),
            Decimal(1),
        ),
        oracle_setup: str = "none",
        oracle_keys: tuple[Pubkey | str, ...] = (),
        program_id: str = MARGINFI_PROGRAM,
    ) -> Pubkey:
        """Write a Bank (real 1,864-byte layout) at `bank`; share values as I80F48 bits
        (value x 2**48): base units per share. `weights`: (asset init, asset maint, liability
        init, liability maint); the default is marginfi's `BankConfig::default()`.
        `oracle_setup` / `oracle_keys`: the bank's price source (e.g. "pyth_push_oracle" with
        the PriceUpdateV2 account first). May raise: ValueError (unknown setup, > 5 keys)."""
        asset_init, asset_maint, liability_init, liability_maint = weights
        data = marginfi.encode_bank(
            mint=_key(mint),
            mint_decimals=mint_decimals,
            group=_key(group),
            asset_share_value=asset_share_value,
            liability_share_value=liability_share_value,
            asset_weight_init=asset_init,
            asset_weight_maint=asset_maint,
            liability_weight_init=liability_init,
            liability_weight_maint=liability_maint,
        )
        data = layouts.with_bank_oracle(data, oracle_setup, tuple(_key(k) for k in oracle_keys))
        self.set_raw_account(bank, data, Pubkey.from_string(program_id))
        return _key(bank)

    def set_marginfi_account(
        self,
        authority: Pubkey | str,
        group: Pubkey | str,
        *,
        balances: tuple[tuple[Pubkey, int, int], ...] = (),
        address: Pubkey | str | None = None,
        account_index: int = 0,
        program_id: str = MARGINFI_PROGRAM,
    ) -> Pubkey:
        """Write a MarginfiAccount (real 2,312-byte layout). At `address` (a keypair account) or,
        without it, at the PDA of (group, authority, account_index). `balances`: (bank,
        asset_shares bits, liability_shares bits), I80F48 bits = shares x 2**48."""
        program = Pubkey.from_string(program_id)
        target = (
            _key(address)
            if address is not None
            else marginfi.account_address(program, _key(group), _key(authority), account_index)
        )
        data = marginfi.encode_account(
            group=_key(group), authority=_key(authority), balances=balances
        )
        self.set_raw_account(target, data, program)
        return target
