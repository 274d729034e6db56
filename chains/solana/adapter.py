"""`SolanaAdapter`: every configured balance, position and price of a set of wallets, read at
one context slot.

A poll is: `getLatestBlockhash` at the configured commitment (the pinned slot S and its
blockhash), optionally `getTokenAccountsByOwner` per wallet and token program (keys only, to
find token accounts that are not ATAs) and `getProgramAccounts` per wallet for MarginFi
(keys only, for keypair accounts that cannot be derived), then `getMultipleAccounts` in chunks of
`accounts_per_request` with `minContextSlot` S, then `getBlockTime` of the slot read.

Venue oracles (the accounts Drift markets and MarginFi banks price from) are named inside those
accounts: the adapter remembers the ones it has seen and plans them up front; when a read names
one it has not planned, it is added and the whole list is read again, so that the venue
accounts (`ChainSnapshot.venue_accounts`) come from the same pass as everything else.

Solana RPC cannot read at a past slot: a node answers from its newest bank at the commitment.
When chunks come back at different context slots the pass is repeated once, pinned to the
highest; if they still differ the snapshot is kept, reported at the highest slot, and
`extra["context_slots"]` says the spread. `ReadPoint.block_hash` is the blockhash from
`getLatestBlockhash` when the read slot is S (the usual case), otherwise `slot:<n>` (getting the
blockhash of another slot would cost a `getBlock`).

Chain identity: the first read through each endpoint asks `getGenesisHash` and refuses an
endpoint of another cluster (naming it). Reorgs: slots read before at `confirmed` are re-checked
with `getSlot` + `getBlocks` at `finalized`; a slot at or below the finalized slot that the
finalized chain does not contain was skipped, and comes back as a `HeadCheck` with
`skipped=True`.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Sequence
from typing import Any

from chains.base import AdapterError, Address, ChainSnapshot, Finality, HeadCheck, ReadPoint
from chains.endpoints import EndpointHealth
from chains.solana import venues
from chains.solana.decoders import marginfi
from chains.solana.lines import RawAccount, build_lines
from chains.solana.plan import ReadPlan, Role, build_plan
from chains.solana.rpc import Endpoint, EndpointFailure, FailoverTransport
from chains.solana.spec import SolanaChainSpec

_CONCURRENT_REQUESTS = 8
# accounts, read slot, block hash, block time, context-slot spread
_Read = tuple[dict[str, RawAccount | None], int, str, int, str | None]


class _Shape(EndpointFailure):
    """A result that parsed as JSON-RPC but not as the method's result type."""


class SolanaAdapter:
    """Reads one Solana chain; implements `chains.base.ChainAdapter`."""

    def __init__(self, spec: SolanaChainSpec) -> None:
        if spec.commitment not in ("finalized", "confirmed"):
            raise ValueError(f"commitment must be finalized or confirmed, not {spec.commitment}")
        self.spec = spec
        self.chain = spec.chain
        self.caip2 = spec.caip2
        self._transport = FailoverTransport(spec.endpoints)
        self._genesis_checked: set[str] = set()  # endpoints that answered the right genesis
        self._venue_oracles: dict[str, None] = {}  # oracle accounts venue markets named so far

    @property
    def endpoint_health(self) -> dict[str, EndpointHealth]:
        """Per-URL health record (successes, failures, last error, latency)."""
        return self._transport.health

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def snapshot(self, wallets: Sequence[Address]) -> ChainSnapshot:
        """Read all configured lines of `wallets` at one slot.

        May raise: AdapterError (every endpoint failed or answered garbage).
        """
        return await self.snapshot_rechecking(wallets, ())

    async def snapshot_rechecking(
        self, wallets: Sequence[Address], heights: Sequence[int]
    ) -> ChainSnapshot:
        """`snapshot(wallets)`, and for each of `heights` (slots read before) whether the
        finalized chain skipped it: `head_checks` (slots above the finalized slot are not
        answered yet). Nothing is re-checked when reading at `finalized` itself.

        May raise: AdapterError (every endpoint failed, answered garbage or serves another
        cluster).
        """
        plan = build_plan(self.spec, wallets, list(self._venue_oracles))
        before = self._request_total()
        checked = sorted(set(heights)) if self.spec.commitment != "finalized" else []

        async def read(endpoint: Endpoint) -> tuple[_Read, tuple[HeadCheck, ...]]:
            await self._check_genesis(endpoint)
            result = await self._read(endpoint, plan)
            return result, await self._check_slots(endpoint, checked)

        try:
            (result, head_checks), endpoint = await self._transport.run(read)
        except EndpointFailure as failure:
            raise AdapterError(f"{self.chain}: {failure}") from None
        accounts, slot, block_hash, block_time, spread = result
        lines = build_lines(self.spec, plan, accounts, block_time)
        extra = {"commitment": self.spec.commitment, "accounts_read": str(len(plan.keys))}
        if spread is not None:
            extra["context_slots"] = spread
        finality: Finality = "finalized" if self.spec.commitment == "finalized" else "confirmed"
        return ChainSnapshot(
            chain=self.chain,
            caip2=self.caip2,
            read_point=ReadPoint(slot, block_hash, block_time, finality),
            balances=tuple(lines.balances),
            positions=tuple(lines.positions),
            prices=tuple(lines.prices),
            issues=tuple(lines.issues),
            request_count=self._request_total() - before,
            endpoint=endpoint.url,
            extra=extra,
            head_checks=head_checks,
            venue_accounts=tuple(lines.venue_accounts),
        )

    async def _check_genesis(self, endpoint: Endpoint) -> None:
        """Refuse an endpoint whose genesis hash is not the configured one (once per endpoint).

        May raise: EndpointFailure (naming the endpoint; not retried).
        """
        if endpoint.url in self._genesis_checked:
            return
        genesis = await endpoint.call("getGenesisHash", [])
        if not isinstance(genesis, str):
            raise _Shape(f"getGenesisHash: not a hash ({str(genesis)[:40]!r})")
        if not genesis.startswith(self.spec.genesis_hash):
            raise _Shape(
                f"getGenesisHash: endpoint {endpoint.url} serves the cluster with genesis "
                f"{genesis}, not {self.spec.genesis_hash} (configured for {self.chain}): refused"
            )
        self._genesis_checked.add(endpoint.url)

    async def _check_slots(self, endpoint: Endpoint, slots: list[int]) -> tuple[HeadCheck, ...]:
        """Which of `slots` the finalized chain skipped, for those at or below its slot.

        May raise: EndpointFailure.
        """
        if not slots:
            return ()
        finalized = await endpoint.call("getSlot", [{"commitment": "finalized"}])
        if not isinstance(finalized, int):
            raise _Shape(f"getSlot: not a slot ({finalized!r})")
        judged = [slot for slot in slots if slot <= finalized]
        if not judged:
            return ()
        blocks = await endpoint.call(
            "getBlocks", [judged[0], judged[-1], {"commitment": "finalized"}]
        )
        if not isinstance(blocks, list) or not all(isinstance(b, int) for b in blocks):
            raise _Shape(f"getBlocks: not a list of slots ({str(blocks)[:40]!r})")
        present = set(blocks)
        return tuple(HeadCheck(slot, None, skipped=slot not in present) for slot in judged)

    def _request_total(self) -> int:
        return sum(endpoint.request_count for endpoint in self._transport.endpoints)

    async def _read(self, endpoint: Endpoint, plan: ReadPlan) -> _Read:
        commitment = self.spec.commitment
        latest = await endpoint.call("getLatestBlockhash", [{"commitment": commitment}])
        try:
            pinned = int(latest["context"]["slot"])
            blockhash = str(latest["value"]["blockhash"])
        except (KeyError, TypeError, ValueError):
            raise _Shape("getLatestBlockhash: result has no context slot/blockhash") from None
        keys = list(plan.keys)
        if self.spec.discover_token_accounts and plan.token_programs:
            keys += await self._discover(endpoint, plan, pinned)
        if plan.marginfi_discovery is not None:
            keys += await self._discover_marginfi(endpoint, plan, pinned)
        accounts, slots = await self._read_accounts(endpoint, keys, pinned)
        named = venues.referenced_oracles(self.spec, plan, accounts)
        self._venue_oracles.update(dict.fromkeys(named))
        unplanned = [key for key in named if key not in plan.roles]
        if unplanned:
            for key in unplanned:
                plan.add(key, Role("venue_oracle"))
            keys += unplanned
            accounts, slots = await self._read_accounts(endpoint, keys, max(slots))
        if len(slots) > 1 or (slots and max(slots) != pinned):
            accounts, slots = await self._read_accounts(endpoint, keys, max(slots))
        read_slot = max(slots) if slots else pinned
        spread = f"{min(slots)}-{max(slots)}" if len(slots) > 1 else None
        block_time = await endpoint.call("getBlockTime", [read_slot])
        if not isinstance(block_time, int):
            raise _Shape(f"getBlockTime: no block time for slot {read_slot} ({block_time!r})")
        block_hash = blockhash if read_slot == pinned else f"slot:{read_slot}"
        return accounts, read_slot, block_hash, block_time, spread

    async def _discover(self, endpoint: Endpoint, plan: ReadPlan, pinned: int) -> list[str]:
        """Token accounts of each wallet that the plan does not already read (non-ATAs)."""
        gate = asyncio.Semaphore(_CONCURRENT_REQUESTS)
        config = {
            "commitment": self.spec.commitment,
            "encoding": "base64",
            "dataSlice": {"offset": 0, "length": 0},  # keys only: data is read at one slot below
            "minContextSlot": pinned,
        }

        async def one(wallet: str, program: str) -> list[tuple[str, str]]:
            async with gate:
                result = await endpoint.call(
                    "getTokenAccountsByOwner", [wallet, {"programId": program}, config]
                )
            try:
                return [(str(entry["pubkey"]), wallet) for entry in result["value"]]
            except (KeyError, TypeError):
                raise _Shape("getTokenAccountsByOwner: unexpected result shape") from None

        found = await asyncio.gather(
            *(
                one(wallet, program)
                for wallet, _key in plan.wallets
                for program in plan.token_programs
            )
        )
        extra: list[str] = []
        for entries in found:
            for key, wallet in entries:
                if key not in plan.roles:
                    plan.add(key, Role("token", wallet=wallet))
                    extra.append(key)
        return extra

    async def _discover_marginfi(
        self, endpoint: Endpoint, plan: ReadPlan, pinned: int
    ) -> list[str]:
        """MarginFi accounts of each wallet that the plan does not already read: keypair
        accounts cannot be derived, so the program is asked by authority and group."""
        assert plan.marginfi_discovery is not None
        program, group = plan.marginfi_discovery
        gate = asyncio.Semaphore(_CONCURRENT_REQUESTS)

        async def one(wallet: str) -> list[tuple[str, str]]:
            config = {
                "commitment": self.spec.commitment,
                "encoding": "base64",
                "dataSlice": {"offset": 0, "length": 0},  # keys only, as for token accounts
                "minContextSlot": pinned,
                "filters": [
                    {"dataSize": marginfi.ACCOUNT_LEN},
                    {"memcmp": {"offset": 8, "bytes": group}},
                    {"memcmp": {"offset": 40, "bytes": wallet}},
                ],
            }
            async with gate:
                result = await endpoint.call("getProgramAccounts", [program, config])
            if isinstance(result, dict):  # a node that answers withContext-style
                result = result.get("value")
            try:
                return [(str(entry["pubkey"]), wallet) for entry in result]
            except (KeyError, TypeError):
                raise _Shape("getProgramAccounts: unexpected result shape") from None

        found = await asyncio.gather(*(one(wallet) for wallet, _key in plan.wallets))
        extra: list[str] = []
        for entries in found:
            for key, wallet in entries:
                if key not in plan.roles:
                    plan.add(key, Role("marginfi", wallet=wallet))
                    extra.append(key)
        return extra

    async def _read_accounts(
        self, endpoint: Endpoint, keys: list[str], min_slot: int
    ) -> tuple[dict[str, RawAccount | None], set[int]]:
        size = self.spec.accounts_per_request
        gate = asyncio.Semaphore(_CONCURRENT_REQUESTS)
        config = {
            "commitment": self.spec.commitment,
            "encoding": "base64",
            "minContextSlot": min_slot,
        }

        async def chunk(part: list[str]) -> tuple[int, list[Any]]:
            async with gate:
                result = await endpoint.call("getMultipleAccounts", [part, config])
            try:
                values = result["value"]
                if len(values) != len(part):
                    raise _Shape(f"getMultipleAccounts: {len(values)} accounts for {len(part)}")
                return int(result["context"]["slot"]), values
            except (KeyError, TypeError, ValueError):
                raise _Shape("getMultipleAccounts: unexpected result shape") from None

        parts = [keys[index : index + size] for index in range(0, len(keys), size)]
        results = await asyncio.gather(*(chunk(part) for part in parts))
        accounts: dict[str, RawAccount | None] = {}
        slots: set[int] = set()
        for part, (slot, values) in zip(parts, results, strict=True):
            slots.add(slot)
            for key, value in zip(part, values, strict=True):
                accounts[key] = None if value is None else _raw_account(value)
        return accounts, slots


def _raw_account(value: Any) -> RawAccount:
    try:
        data, encoding = value["data"]
        if encoding != "base64":
            raise _Shape(f"getMultipleAccounts: data encoded as {encoding}, asked base64")
        return RawAccount(str(value["owner"]), int(value["lamports"]), base64.b64decode(data))
    except (KeyError, TypeError, ValueError):
        raise _Shape("getMultipleAccounts: account entry has an unexpected shape") from None
