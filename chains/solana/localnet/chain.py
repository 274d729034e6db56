"""`LocalSolana`: a LiteSVM chain with a JSON-RPC endpoint, and the calls tests and the demo use.

Token mints and accounts are created by the real SPL Token / Token-2022 and Associated Token
Account programs (LiteSVM ships them) through signed transactions. Oracle and protocol accounts
(Pyth PriceUpdateV2, Drift User/SpotMarket/PerpMarket, Kamino Obligation/Reserve, MarginFi
Account/Bank) are written with their real layouts and owner programs via `set_raw_account`
(the venues' writers are in `venue_accounts`), since those programs are not loaded. Drift
markets and MarginFi banks can name the oracle account they price from, and Kamino reserves
hold their own market price, as the venues' accounts do.
"""

from __future__ import annotations

from collections.abc import Iterable
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

from chains.solana.decoders import pyth
from chains.solana.decoders.spl_token import associated_token_address, encode_token_account
from chains.solana.localnet.ledger import Ledger
from chains.solana.localnet.pubsub import PubSubServer
from chains.solana.localnet.server import RpcServer
from chains.solana.localnet.venue_accounts import (
    DRIFT_PROGRAM,
    KAMINO_PROGRAM,
    MARGINFI_PROGRAM,
    VenueAccounts,
    keypair_from_seed,
)
from chains.solana.localnet.venue_accounts import as_pubkey as _key
from chains.solana.spec import PYTH_RECEIVER_PROGRAM, SPL_TOKEN_PROGRAM

__all__ = [
    "DRIFT_PROGRAM",
    "KAMINO_PROGRAM",
    "MARGINFI_PROGRAM",
    "LocalChainError",
    "LocalSolana",
    "keypair_from_seed",
]

MINT_LEN = 82
SYSTEM_PROGRAM = Pubkey.default()


class LocalChainError(RuntimeError):
    """A transaction on the local chain failed."""


class LocalSolana(VenueAccounts):
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
