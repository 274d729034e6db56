"""`status_record` fills a StatusRecord's slots directly: the result must be the record the
dataclass's own constructor gives for the same document, field for field."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime
from decimal import Decimal

from aggregator.publish.render import status_record
from aggregator.store.published.statuses import StatusRecord


def _document(health_factor: str | None) -> dict[str, object]:
    return {
        "status": "warning",
        "stale": True,
        "stale_chains": ["eip155:1"],
        "health_factor": health_factor,
        "equity": "29367.000000000000009",
        "weighted_collateral": {"init": "24247.9017", "maint": "27278.8894"},
        "requirement": {"init": "1244.4975", "maint": "1140.7894"},
        "health": {"init": "23003.4041", "maint": "26138.1000"},
        "free_collateral": "23003.4041",
    }


def test_status_record_equals_the_constructors_record() -> None:
    as_of = datetime(2026, 12, 3, tzinfo=UTC)
    for hf in ("23.912291311342392357", None):
        document = _document(hf)
        inputs = {"market": 1, "heads": {"a": 1}}
        built = status_record(7, as_of, document, inputs)
        expected = StatusRecord(
            user_id=7,
            as_of=as_of,
            status="warning",
            stale=True,
            stale_chains=("eip155:1",),
            health_factor=None if hf is None else Decimal(hf),
            equity_usd=Decimal("29367.000000000000009"),
            weighted_collateral_init_usd=Decimal("24247.9017"),
            weighted_collateral_maint_usd=Decimal("27278.8894"),
            requirement_init_usd=Decimal("1244.4975"),
            requirement_maint_usd=Decimal("1140.7894"),
            health_init_usd=Decimal("23003.4041"),
            health_maint_usd=Decimal("26138.1000"),
            free_collateral_usd=Decimal("23003.4041"),
            document=document,
            inputs=inputs,
        )
        assert built == expected
        for field in fields(StatusRecord):  # every slot filled, none left unset
            assert getattr(built, field.name) == getattr(expected, field.name)
