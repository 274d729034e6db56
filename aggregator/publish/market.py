"""The market of a pass: what every user of one publish pass is valued against.

Its instant, each chain's read point (the head it was read at, and whether polls failed
since), each asset's price and volatility, and a digest of the config tables the valuation
depends on. It is stored once per pass (`valuation_markets`) and status rows refer to it, so
the full document can be rendered on read from the market and the user's stored lines.
Money stays exact: decimals go to JSON as strings and come back as the same Decimals.

With (chain, shard) polls a chain has several heads: the whole-chain poll's and one per shard
poll. The pass's market carries them all; each publish shard values against its own view
(`PassMarket.for_shard`: per chain, the newest head that holds its users' lines), stored as a
market of its own when it differs, so a status's read points, staleness and failed-poll flags
are those of the heads its lines were really read at.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from aggregator.config import LoadedConfig
from aggregator.publish.portfolios import (
    ObservedChain,
    ObservedLine,
    ObservedPrice,
    PortfolioBatch,
    build_portfolios,
)
from aggregator.store.observed.observations import ChainObservations
from aggregator.store.published.markets import record_market


@dataclass(frozen=True, slots=True)
class ChainRead:
    """One chain's read point in a pass, as the status document reports it."""

    chain: str
    head_id: int
    height: int
    block_hash: str
    timestamp: int
    finality: str
    last_poll_failed: bool
    last_poll_error: str | None
    # A (chain, shard) poll's head: it holds the lines of users with user_id % shard_count
    # = shard_index only. None: a whole-chain poll's head.
    shard_index: int | None = None
    shard_count: int | None = None
    # On a pass's read of a chain: the newest head of each of its shard polls.
    shards: tuple[ChainRead, ...] = ()

    @property
    def whole_chain(self) -> bool:
        return self.shard_index is None

    def serves(self, index: int, count: int) -> bool:
        """Whether its lines cover shard `index` of `count` (a whole-chain head covers all)."""
        return self.whole_chain or (self.shard_index, self.shard_count) == (index, count)

    def for_shard(self, index: int, count: int) -> ChainRead | None:
        """The newest (height, then head id) of this read and its shard reads that covers
        shard `index` of `count`, without shard reads of its own; None when none does."""
        candidates = [r for r in (self, *self.shards) if r.serves(index, count)]
        if not candidates:
            return None
        best = max(candidates, key=lambda r: (r.height, r.head_id))
        return replace(best, shards=()) if best.shards else best

    def to_document(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "head_id": self.head_id,
            "height": self.height,
            "block_hash": self.block_hash,
            "timestamp": self.timestamp,
            "finality": self.finality,
            "last_poll_failed": self.last_poll_failed,
            "last_poll_error": self.last_poll_error,
        }
        # Only when there: a market of whole-chain reads keeps the document (and digest) it had.
        if self.shard_index is not None:
            document["shard"] = [self.shard_index, self.shard_count]
        if self.shards:
            document["shards"] = [read.to_document() for read in self.shards]
        return document

    @classmethod
    def from_document(cls, chain: str, r: Mapping[str, Any]) -> ChainRead:
        """May raise: KeyError, ValueError, TypeError."""
        shard = r.get("shard")
        return cls(
            chain=chain,
            head_id=int(r["head_id"]),
            height=int(r["height"]),
            block_hash=str(r["block_hash"]),
            timestamp=int(r["timestamp"]),
            finality=str(r["finality"]),
            last_poll_failed=bool(r["last_poll_failed"]),
            last_poll_error=r["last_poll_error"],
            shard_index=None if shard is None else int(shard[0]),
            shard_count=None if shard is None else int(shard[1]),
            shards=tuple(cls.from_document(chain, s) for s in r.get("shards") or ()),
        )

    def observed(self) -> ObservedChain:
        return ObservedChain(
            chain=self.chain,
            height=self.height,
            block_hash=self.block_hash,
            block_time=datetime.fromtimestamp(self.timestamp, UTC),
            finality=self.finality,
        )


def _chain_read(obs: ChainObservations) -> ChainRead:
    return ChainRead(
        chain=obs.chain,
        head_id=obs.head_id,
        height=obs.read_point.height,
        block_hash=obs.read_point.block_hash,
        timestamp=obs.read_point.timestamp,
        finality=obs.read_point.finality,
        last_poll_failed=obs.superseded_by_failure,
        last_poll_error=obs.last_failure_error,
        shard_index=obs.shard_index,
        shard_count=obs.shard_count,
        shards=tuple(_chain_read(shard) for shard in obs.shards),
    )


def chain_reads(observations: Mapping[str, ChainObservations]) -> dict[str, ChainRead]:
    """Each chain's read in a pass: its whole-chain head (or, with none, its newest shard
    head), carrying the newest head of each of its (chain, shard) polls (`for_shard`)."""
    return {key: _chain_read(obs) for key, obs in observations.items()}


def config_digest(config: LoadedConfig) -> str:
    """A digest of the tables valuation reads (risk, assets, chains): when it changes, every
    status is revalued and rewritten."""
    model = config.model
    text = "|".join(
        (
            model.risk.model_dump_json(),
            json.dumps({k: v.model_dump(mode="json") for k, v in model.assets.items()}),
            json.dumps({k: v.model_dump(mode="json") for k, v in model.chains.items()}),
        )
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


@dataclass(frozen=True)
class PassMarket:
    """The shared inputs of one pass."""

    as_of: datetime
    reads: dict[str, ChainRead]  # chain key -> read point
    prices: dict[str, ObservedPrice]
    volatility: dict[str, Decimal]
    config: str  # config_digest

    def for_shard(self, index: int, count: int) -> PassMarket:
        """The market publish shard `index` of `count` values against: per chain, the newest
        good head among the whole-chain head and the head of the (chain, shard `index` of
        `count`) poll; a chain with neither is unread for the shard (a head of another shard
        never stands in: it holds none of this shard's lines). Itself when that is every
        chain's pass read (the pass's stored market then serves the shard too)."""
        reads: dict[str, ChainRead] = {}
        for key, read in self.reads.items():
            chosen = read.for_shard(index, count)
            if chosen is not None:
                reads[key] = chosen
        if reads.keys() == self.reads.keys() and all(
            reads[key].head_id == read.head_id for key, read in self.reads.items()
        ):
            return self
        return replace(self, reads=reads)

    def observed_chains(self) -> list[ObservedChain]:
        return [read.observed() for read in self.reads.values()]

    def portfolios(
        self,
        config: LoadedConfig,
        user_chains: Mapping[int, Sequence[str]],
        lines: Iterable[ObservedLine],
    ) -> PortfolioBatch:
        """Each user's portfolio in this market (`build_portfolios`)."""
        return build_portfolios(
            config,
            self.as_of,
            user_chains,
            self.observed_chains(),
            lines,
            self.prices,
            self.volatility,
        )

    def to_document(self) -> dict[str, Any]:
        return {
            "as_of": _iso(self.as_of),
            "config": self.config,
            "chains": {key: r.to_document() for key, r in self.reads.items()},
            "prices": {
                symbol: {
                    "price": str(p.price),
                    "conf": str(p.conf),
                    "publish_time": _iso(p.publish_time),
                }
                for symbol, p in self.prices.items()
            },
            "volatility": {symbol: str(v) for symbol, v in self.volatility.items()},
        }

    @property
    def digest(self) -> str:
        canonical = json.dumps(self.to_document(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> PassMarket:
        """The market a stored document describes. May raise: KeyError, ValueError."""
        reads = {key: ChainRead.from_document(key, r) for key, r in document["chains"].items()}
        prices = {
            symbol: ObservedPrice(
                symbol,
                Decimal(p["price"]),
                Decimal(p["conf"]),
                datetime.fromisoformat(p["publish_time"]),
            )
            for symbol, p in document["prices"].items()
        }
        return cls(
            as_of=datetime.fromisoformat(document["as_of"]),
            reads=reads,
            prices=prices,
            volatility={s: Decimal(v) for s, v in document["volatility"].items()},
            config=str(document["config"]),
        )


async def shard_market(
    session: AsyncSession, market: PassMarket, market_id: int, index: int, count: int
) -> tuple[PassMarket, int]:
    """Shard `index` of `count`'s market (`for_shard`) and its stored id: the pass's own when
    the shard reads the pass's heads, else stored now (by digest) in the shard's transaction,
    so each status refers to the market whose read points it was valued at."""
    own = market.for_shard(index, count)
    if own is market:
        return market, market_id
    return own, await record_market(session, own.digest, own.as_of, own.to_document())
