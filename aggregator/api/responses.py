"""JSON responses rendered by orjson: the API's documents are plain dicts of strings, numbers,
booleans and nulls (money is already decimal text), so nothing needs a custom encoder."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


class Json(Response):
    """`application/json` rendered with orjson."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        if isinstance(content, bytes):
            return content
        return orjson.dumps(content)


def dumps(content: Any) -> bytes:
    """The bytes `Json` would send for `content`."""
    return orjson.dumps(content)
