"""The declarative base of every table: naming conventions, type map, shared value sets."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import BigInteger, DateTime, MetaData, Numeric, Table, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase

BASE_UNITS = Numeric(78, 0)
"""Integer amounts in base units: 78 digits hold every uint256."""

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

STATUSES = ("healthy", "warning", "margin_call", "liquidatable")
FINALITIES = ("finalized", "safe", "confirmed", "latest")
POSITION_KINDS = ("deposit", "borrow", "perp")


def check_in(column: str, values: tuple[str, ...]) -> str:
    """A CHECK expression: `column` is one of `values`."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 (SQLAlchemy reads this class attribute)
        int: BigInteger(),
        str: Text(),
        datetime: DateTime(timezone=True),
        Decimal: Numeric(),
        dict[str, Any]: JSONB(),
        list[Any]: JSONB(),
    }


def table_of(model: type[Base]) -> Table:
    """The Core table of a mapped class (for bulk executemany inserts)."""
    return cast(Table, model.__table__)
