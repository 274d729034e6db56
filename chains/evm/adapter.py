"""The EVM chain adapter: every balance, price and lending position of a poll read at one block.

A poll first pins a block from the configured finality (`finalized`, `safe`, `latest`,
`latest-N`), then runs every read as Multicall3 `aggregate3` eth_calls at that block number,
chunked by `spec.calls_per_batch` and sent concurrently through async web3.py (`rpc.py`: one
`AsyncWeb3` per endpoint, calldata built here rather than through contract objects). It either
returns a whole ChainSnapshot or raises AdapterError; lines whose own call fails are skipped and
reported as LineIssues.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chains.base import AdapterError, Address, ChainSnapshot, Finality, HeadCheck, ReadPoint
from chains.endpoints import EndpointHealth
from chains.evm.aave_v3 import AaveV3Section
from chains.evm.abi import AbiDecodeError
from chains.evm.address import address_bytes
from chains.evm.balances import BalanceSection
from chains.evm.chainlink import ChainlinkSection
from chains.evm.multicall import Call3, CallResult, chunked, decode_aggregate3, encode_aggregate3
from chains.evm.plan import ReadSection, SnapshotParts
from chains.evm.rpc import EndpointPool, RequestMeter
from chains.evm.spec import EvmChainSpec
from chains.gcpause import collector_paused

_DEPTH = re.compile(r"latest-(\d+)")
_TAGS: dict[str, Finality] = {"finalized": "finalized", "safe": "safe", "latest": "latest"}
# Chunks in flight at once: enough to keep a node's cores busy, few enough for rate limits.
_MAX_CONCURRENT_CALLS = 8
# Stored heights re-checked per poll at most: they ride in the pin's batch, at no extra request.
MAX_HEAD_CHECKS = 16


@dataclass(frozen=True, slots=True)
class FinalityRule:
    """How the read block is chosen: a node tag, optionally `depth` blocks below it."""

    tag: str
    depth: int
    reported: Finality

    @classmethod
    def parse(cls, text: str) -> FinalityRule:
        """May raise: ValueError (an unknown finality)."""
        if text in _TAGS:
            return cls(text, 0, _TAGS[text])
        match = _DEPTH.fullmatch(text)
        if match:
            return cls("latest", int(match.group(1)), "latest")
        raise ValueError(f"unknown EVM finality {text!r}: use finalized, safe, latest or latest-N")


class EvmAdapter:
    """Reads one EVM chain for a list of wallets. See the module docstring."""

    def __init__(self, spec: EvmChainSpec) -> None:
        """May raise: ValueError (bad finality, empty endpoint list, malformed addresses)."""
        self.spec = spec
        self.chain = spec.chain
        self.caip2 = spec.caip2
        self._finality = FinalityRule.parse(spec.finality)
        if spec.calls_per_batch < 1:
            raise ValueError(f"{spec.chain}: calls_per_batch must be positive")
        _check_addresses(spec)
        self._pool = EndpointPool(spec.chain, spec.endpoints)

    @property
    def endpoint_health(self) -> dict[str, EndpointHealth]:
        """Per-URL success/failure counts, last error and last latency."""
        return self._pool.health

    async def aclose(self) -> None:
        await self._pool.aclose()

    async def snapshot(self, wallets: Sequence[Address]) -> ChainSnapshot:
        """Every configured balance, Chainlink price and Aave position of `wallets`, read at one
        pinned block.

        May raise: AdapterError.
        """
        return await self.snapshot_rechecking(wallets, ())

    async def snapshot_rechecking(
        self, wallets: Sequence[Address], heights: Sequence[int]
    ) -> ChainSnapshot:
        """`snapshot(wallets)`, and the canonical hash at each of `heights` (the newest
        `MAX_HEAD_CHECKS`) read in the same JSON-RPC batch as the pin: `head_checks`.

        May raise: AdapterError.
        """
        wallets = list(dict.fromkeys(wallets))  # a wallet listed twice is read once
        meter = RequestMeter()
        checked = sorted(set(heights), reverse=True)[:MAX_HEAD_CHECKS]
        read_point, head_checks = await self._pin(meter, checked)
        parts = SnapshotParts()
        sections: list[ReadSection] = [
            BalanceSection(wallets, self.spec.tokens, self.spec.multicall_address, parts),
            ChainlinkSection(self.spec.feeds),
        ]
        valid_wallets = [Address(w) for w in wallets if _is_hex20(w)]
        sections.extend(AaveV3Section(pool, valid_wallets) for pool in self.spec.aave_pools)
        with collector_paused():  # a snapshot of many wallets: see chains.gcpause
            calls: list[Call3] = [call for section in sections for call in section.calls]
            results = await self._aggregate(calls, read_point.height, meter)
            start = 0
            for section in sections:
                count = len(section.calls)
                section.collect(results[start : start + count], parts)
                start += count
        parts.extra["finality_rule"] = self.spec.finality
        if len(meter.served_by) > 1:
            parts.extra["endpoints"] = ",".join(meter.served_by)
        return ChainSnapshot(
            chain=self.chain,
            caip2=self.caip2,
            read_point=read_point,
            balances=tuple(parts.balances),
            positions=tuple(parts.positions),
            prices=tuple(parts.prices),
            issues=tuple(parts.issues),
            request_count=meter.count,
            endpoint=meter.served_by[-1] if meter.served_by else None,
            extra=parts.extra,
            head_checks=head_checks,
            venue_accounts=tuple(parts.venue_accounts),
        )

    async def _pin(
        self, meter: RequestMeter, checked: Sequence[int] = ()
    ) -> tuple[ReadPoint, tuple[HeadCheck, ...]]:
        """Resolve the read block (number, hash, parent hash, timestamp), check the chain id,
        and read the canonical block at each `checked` height in the same batch.

        May raise: AdapterError.
        """
        rule = self._finality
        answers = await self._pool.batch(
            [
                ("eth_chainId", []),
                ("eth_getBlockByNumber", [rule.tag, False]),
                *(("eth_getBlockByNumber", [hex(height), False]) for height in checked),
            ],
            meter,
            what=f"reading the {rule.tag} block",
        )
        chain_id, head = answers[0], answers[1]
        head_checks = tuple(
            self._head_check(height, raw) for height, raw in zip(checked, answers[2:], strict=True)
        )
        if _hex_int(chain_id, "eth_chainId", self.chain) != self.spec.chain_id:
            raise AdapterError(
                f"{self.chain}: endpoint {meter.served_by[-1]} serves chain id "
                f"{_hex_int(chain_id, 'eth_chainId', self.chain)}, expected {self.spec.chain_id}"
            )
        block = self._block(head, rule.tag)
        if rule.depth:
            height = max(0, block.height - rule.depth)
            pinned = await self._pool.request(
                "eth_getBlockByNumber", [hex(height), False], meter, what=f"reading block {height}"
            )
            block = self._block(pinned, hex(height))
        return block, head_checks

    def _head_check(self, height: int, raw: Any) -> HeadCheck:
        """The canonical block at `height` as the batch answered: null is a node whose chain
        does not reach that height (yet), which says nothing about the stored hash."""
        if raw is None:
            return HeadCheck(height, None)
        block = self._block(raw, hex(height))
        if block.height != height:
            raise AdapterError(
                f"{self.chain}: asked block {height}, the node answered block {block.height}"
            )
        return HeadCheck(height, block.block_hash)

    def _block(self, raw: Any, asked: str) -> ReadPoint:
        if not isinstance(raw, dict):
            raise AdapterError(f"{self.chain}: the node returned no block for {asked!r}: {raw!r}")
        try:
            height = int(raw["number"], 16)
            timestamp = int(raw["timestamp"], 16)
            block_hash = str(raw["hash"])
            parent = raw.get("parentHash")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise AdapterError(
                f"{self.chain}: block {asked!r} from the node is malformed ({exc!r})"
            ) from None
        parent_hash = parent if isinstance(parent, str) else None
        return ReadPoint(height, block_hash, timestamp, self._finality.reported, parent_hash)

    async def _aggregate(
        self, calls: Sequence[Call3], height: int, meter: RequestMeter
    ) -> list[CallResult]:
        """Run `calls` through aggregate3 at block `height`, in chunks, concurrently.

        May raise: AdapterError.
        """
        if not calls:
            return []
        chunks = chunked(calls, self.spec.calls_per_batch)
        limit = asyncio.Semaphore(_MAX_CONCURRENT_CALLS)
        block = hex(height)
        to = self.spec.multicall_address

        async def run(chunk: Sequence[Call3]) -> list[CallResult]:
            calldata = "0x" + encode_aggregate3(chunk).hex()
            async with limit:
                raw = await self._pool.request(
                    "eth_call",
                    [{"to": to, "data": calldata}, block],
                    meter,
                    what=f"aggregate3 of {len(chunk)} calls at block {height}",
                )
            return self._decode(raw, len(chunk), height)

        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(run(chunk)) for chunk in chunks]
        except* AdapterError as failures:
            # One failed chunk fails the poll (the other chunks are cancelled): report the first.
            raise _first_leaf(failures) from None
        return [result for task in tasks for result in task.result()]

    def _decode(self, raw: Any, count: int, height: int) -> list[CallResult]:
        where = f"{self.chain}: aggregate3 on {self.spec.multicall_address} at block {height}"
        if not isinstance(raw, str) or not raw.startswith("0x"):
            raise AdapterError(f"{where} returned a non-hex result {str(raw)[:40]!r}")
        try:
            data = bytes.fromhex(raw[2:])
        except ValueError:
            raise AdapterError(f"{where} returned a non-hex result {raw[:40]!r}") from None
        if not data:
            raise AdapterError(f"{where} returned no data (is Multicall3 deployed there?)")
        try:
            return decode_aggregate3(data, count)
        except AbiDecodeError as exc:
            raise AdapterError(f"{where} returned undecodable data: {exc}") from None


def _check_addresses(spec: EvmChainSpec) -> None:
    """Every contract address of the spec is 0x + 40 hex digits, so a poll never trips on one.

    May raise: ValueError (EvmAddressError).
    """
    addresses = [spec.multicall_address]
    addresses += [token.address for token in spec.tokens if token.address is not None]
    addresses += [feed.address for feed in spec.feeds]
    for pool in spec.aave_pools:
        addresses += [pool.pool, pool.data_provider]
        if pool.oracle is not None:
            addresses.append(pool.oracle)
        for reserve in pool.reserves:
            if reserve.address is None:
                raise ValueError(
                    f"{spec.chain}: aave_v3:{pool.name} reserve {reserve.asset} "
                    "has no token address"
                )
            addresses.append(reserve.address)
    for address in addresses:
        address_bytes(address)


def _first_leaf(group: BaseExceptionGroup[AdapterError]) -> AdapterError:
    leaf: BaseException = group
    while isinstance(leaf, BaseExceptionGroup):
        leaf = leaf.exceptions[0]
    assert isinstance(leaf, AdapterError)
    return leaf


def _is_hex20(value: str) -> bool:
    try:
        address_bytes(value)
    except ValueError:
        return False
    return True


def _hex_int(value: Any, what: str, chain: str) -> int:
    try:
        return int(value, 16)
    except (TypeError, ValueError):
        raise AdapterError(f"{chain}: {what} returned {value!r}, not a hex quantity") from None
