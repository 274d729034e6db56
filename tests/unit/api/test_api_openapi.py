"""The OpenAPI document: committed as served, and every field documented."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aggregator.api.openapi_doc import openapi_document

REPO = Path(__file__).resolve().parents[3]


def test_the_committed_document_is_the_served_one() -> None:
    committed = json.loads((REPO / "docs" / "openapi.json").read_text())
    assert committed == openapi_document(), "run `make openapi` and commit docs/openapi.json"


def _properties(schema: dict[str, Any]) -> dict[str, Any]:
    return dict(schema.get("properties", {}))


def test_every_response_field_has_a_description_or_an_example() -> None:
    schemas = openapi_document()["components"]["schemas"]
    undocumented = [
        f"{name}.{field}"
        for name, schema in schemas.items()
        if name not in ("HTTPValidationError", "ValidationError")
        for field, spec in _properties(schema).items()
        if not (spec.get("description") or spec.get("examples"))
    ]
    assert undocumented == []


def test_the_contract_paths_are_served() -> None:
    paths = set(openapi_document()["paths"])
    assert {
        "/v1/users/{user}/margin",
        "/v1/accounts/{account}/margin",
        "/v1/margin:batch",
        "/v1/users/{user}/margin/history",
        "/v1/assets",
        "/v1/chains",
        "/v1/users/{user}/simulate",
        "/v1/simulate",
        "/v1/stream",
        "/healthz",
        "/readyz",
        "/metrics",
    } <= paths
