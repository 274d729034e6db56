"""What every API model shares: no unknown fields, and money as decimal strings."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

DECIMAL_PATTERN = r"^-?\d+(\.\d+)?$"


def dec(description: str, example: str) -> Any:
    """A decimal-string field."""
    return Field(description=description, examples=[example], pattern=DECIMAL_PATTERN)


def opt_dec(description: str, example: str | None) -> Any:
    """A decimal-string field that may be null."""
    return Field(description=description, examples=[example], pattern=DECIMAL_PATTERN)


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")
