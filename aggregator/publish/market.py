"""The market of a pass: what every user of one publish pass is valued against.

Its instant, each chain's read point (the head it was read at, and whether polls failed
since), each asset's price and volatility, and a digest of the config tables the valuation
depends on. It is stored once per pass (`valuation_markets`) and status rows refer to it, so
the full document can be rendered on read from the market and the user's stored lines.
Money stays exact: decimals go to JSON as strings and come back as the same Decimals.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aggregator.config import LoadedConfig
from aggregator.publish.portfolios import (
    ObservedChain,
    ObservedLine,
    ObservedPrice,
    PortfolioBatch,
    build_portfolios,
)
from aggregator.store.observations import ChainObservations


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

    def observed(self) -> ObservedChain:
        return ObservedChain(
            chain=self.chain,
            height=self.height,
            block_hash=self.block_hash,
            block_time=datetime.fromtimestamp(self.timestamp, UTC),
            finality=self.finality,
        )


def chain_reads(observations: Mapping[str, ChainObservations]) -> dict[str, ChainRead]:
    return {
        key: ChainRead(
            chain=key,
            head_id=obs.head_id,
            height=obs.read_point.height,
            block_hash=obs.read_point.block_hash,
            timestamp=obs.read_point.timestamp,
            finality=obs.read_point.finality,
            last_poll_failed=obs.superseded_by_failure,
            last_poll_error=obs.last_failure_error,
        )
        for key, obs in observations.items()
    }


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
            "chains": {
                key: {
                    "head_id": r.head_id,
                    "height": r.height,
                    "block_hash": r.block_hash,
                    "timestamp": r.timestamp,
                    "finality": r.finality,
                    "last_poll_failed": r.last_poll_failed,
                    "last_poll_error": r.last_poll_error,
                }
                for key, r in self.reads.items()
            },
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
        reads = {
            key: ChainRead(
                chain=key,
                head_id=int(r["head_id"]),
                height=int(r["height"]),
                block_hash=str(r["block_hash"]),
                timestamp=int(r["timestamp"]),
                finality=str(r["finality"]),
                last_poll_failed=bool(r["last_poll_failed"]),
                last_poll_error=r["last_poll_error"],
            )
            for key, r in document["chains"].items()
        }
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
