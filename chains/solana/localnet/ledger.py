"""Per-slot account history over a LiteSVM instance, so that commitment levels can lag.

LiteSVM holds only the newest state. Every write made through `Ledger` records the new state of
each touched account at the current (processed) slot; a read at slot S returns the newest version
at or before S. `confirmed` reads lag `processed` by `confirmed_lag` slots and `finalized` reads
by `finalized_lag` slots, so a change made now is unseen at `finalized` until the chain has
advanced `finalized_lag` slots. Accounts never written through the ledger (programs, sysvars)
are read live from LiteSVM: they do not change.

Each version keeps its account pre-rendered as the JSON of a base64 `UiAccount`, so that the
RPC server answers `getMultipleAccounts` by joining strings rather than encoding per request.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from solders.account import Account
from solders.hash import Hash
from solders.litesvm import LiteSVM
from solders.pubkey import Pubkey

TOKEN_PROGRAMS = frozenset(
    {
        "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA",
        "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb",
    }
)
COMMITMENTS = ("processed", "confirmed", "finalized")

# Told, under the ledger lock, of each account write that changed the account (name, slot) and
# of each slot advance (new processed slot): what the PubSub endpoint notifies from.
ChangeListener = Callable[[str, int], None]
SlotListener = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class AccountVersion:
    """One account state from `slot` on; `account` None means the account does not exist."""

    slot: int
    account: Account | None
    owner: str
    ui_json: str  # "null" or the base64 UiAccount JSON object


def render_account(account: Account | None) -> str:
    """The JSON of an RPC `UiAccount` with base64 data (or `null`)."""
    if account is None:
        return "null"
    data = account.data
    encoded = base64.b64encode(data).decode()
    return (
        f'{{"data":["{encoded}","base64"],"executable":{"true" if account.executable else "false"},'
        f'"lamports":{account.lamports},"owner":"{account.owner}",'
        f'"rentEpoch":{account.rent_epoch},"space":{len(data)}}}'
    )


@dataclass(slots=True)
class _History:
    slots: list[int] = field(default_factory=list)
    versions: list[AccountVersion] = field(default_factory=list)


class Ledger:
    """A LiteSVM plus the slot clock and per-slot account versions. Thread-safe."""

    def __init__(
        self,
        *,
        start_slot: int = 1000,
        confirmed_lag: int = 1,
        finalized_lag: int = 4,
        genesis_unix_time: int = 1_735_689_600,
    ) -> None:
        self.svm = LiteSVM()
        self.lock = threading.RLock()
        self.confirmed_lag = confirmed_lag
        self.finalized_lag = finalized_lag
        self.genesis_unix_time = genesis_unix_time
        self._slot = start_slot
        self._histories: dict[str, _History] = {}
        self._token_accounts_by_owner: dict[str, set[str]] = {}
        self._accounts_by_program: dict[str, set[str]] = {}  # every owner an account ever had
        # Slots the finalized chain does not contain (a fork seen at `confirmed` that lost).
        self.skipped_slots: set[int] = set()
        self.genesis_hash = Hash(hashlib.sha256(b"xmargin-localnet-genesis").digest())
        self.change_listeners: list[ChangeListener] = []
        self.slot_listeners: list[SlotListener] = []
        self._sync_clock()

    # slots and time ---------------------------------------------------------------------
    @property
    def processed_slot(self) -> int:
        return self._slot

    def slot_for(self, commitment: str) -> int:
        """The slot a read at `commitment` sees. May raise: ValueError (unknown commitment)."""
        if commitment == "processed":
            lag = 0
        elif commitment == "confirmed":
            lag = self.confirmed_lag
        elif commitment == "finalized":
            lag = self.finalized_lag
        else:
            raise ValueError(f"unknown commitment {commitment!r}")
        return max(0, self._slot - lag)

    def block_time(self, slot: int) -> int:
        """Unix seconds of `slot`: the genesis time plus 400 ms a slot."""
        return self.genesis_unix_time + slot * 2 // 5

    def blockhash(self, slot: int) -> Hash:
        """A deterministic identifier standing for the blockhash of `slot`."""
        return Hash(hashlib.sha256(b"xmargin-localnet-slot" + slot.to_bytes(8, "little")).digest())

    def blocks(self, start: int, end: int) -> list[int]:
        """The slots from `start` to `end` (inclusive) that have a block: all but skipped ones."""
        return [slot for slot in range(max(0, start), end + 1) if slot not in self.skipped_slots]

    def skip_slot(self, slot: int) -> None:
        """Make `slot` one that the finalized chain skipped (its confirmed block lost a fork)."""
        with self.lock:
            self.skipped_slots.add(slot)

    def advance_slots(self, count: int) -> int:
        """Move the processed slot forward; returns the new processed slot."""
        with self.lock:
            self._slot += count
            self._sync_clock()
            for listener in self.slot_listeners:
                listener(self._slot)
            return self._slot

    def _sync_clock(self) -> None:
        clock = self.svm.get_clock()
        clock.slot = self._slot
        clock.unix_timestamp = self.block_time(self._slot)
        self.svm.set_clock(clock)

    # writes ---------------------------------------------------------------------------------
    def snapshot_before(self, keys: list[Pubkey]) -> None:
        """Record the pre-state of accounts about to be touched for the first time at slot 0,
        so that reads before this write still see them as they were."""
        with self.lock:
            for key in keys:
                name = str(key)
                if name not in self._histories:
                    self._append(name, 0, self.svm.get_account(key), notify=False)

    def record(self, keys: list[Pubkey]) -> None:
        """Record the current LiteSVM state of `keys` as their version at the processed slot."""
        with self.lock:
            for key in keys:
                self._append(str(key), self._slot, self.svm.get_account(key))

    def write(self, key: Pubkey, account: Account) -> None:
        """`set_account` and record it: the one door for accounts written with raw layouts."""
        with self.lock:
            self.snapshot_before([key])
            self.svm.set_account(key, account)
            self._append(str(key), self._slot, account)

    def _append(self, name: str, slot: int, account: Account | None, notify: bool = True) -> None:
        history = self._histories.get(name)
        if history is None:
            history = self._histories[name] = _History()
        owner = str(account.owner) if account is not None else ""
        version = AccountVersion(slot, account, owner, render_account(account))
        changed = not history.versions or history.versions[-1].ui_json != version.ui_json
        if history.slots and history.slots[-1] == slot:
            history.versions[-1] = version
        else:
            history.slots.append(slot)
            history.versions.append(version)
        if account is not None:
            self._accounts_by_program.setdefault(owner, set()).add(name)
        if account is not None and owner in TOKEN_PROGRAMS and len(account.data) >= 165:
            holder = str(Pubkey.from_bytes(bytes(account.data[32:64])))
            self._token_accounts_by_owner.setdefault(holder, set()).add(name)
        if notify and changed:
            for listener in self.change_listeners:
                listener(name, slot)

    # reads ---------------------------------------------------------------------------------
    def version_at(self, name: str, slot: int) -> AccountVersion:
        """The account `name` (base58) as of `slot`. May raise: ValueError (not base58)."""
        history = self._histories.get(name)
        if history is None:
            account = self.svm.get_account(Pubkey.from_string(name))
            owner = str(account.owner) if account is not None else ""
            return AccountVersion(slot, account, owner, render_account(account))
        slots = history.slots
        if slots[-1] <= slot:
            return history.versions[-1]
        index = bisect.bisect_right(slots, slot) - 1
        if index < 0:
            return AccountVersion(slot, None, "", "null")
        return history.versions[index]

    def token_account_candidates(self, holder: str) -> list[str]:
        """Token accounts ever recorded with `holder` as their token owner."""
        return sorted(self._token_accounts_by_owner.get(holder, ()))

    def program_account_candidates(self, program: str) -> list[str]:
        """Accounts ever recorded as owned by `program` (check the owner at the slot read)."""
        return sorted(self._accounts_by_program.get(program, ()))
