"""Page cursors: opaque, bound to their resource, refused when edited."""

from __future__ import annotations

import pytest

from aggregator.api.cursor import decode_cursor, encode_cursor
from aggregator.api.errors import ApiError


def test_a_cursor_round_trips_within_its_scope() -> None:
    cursor = encode_cursor("history:7", {"before": 1234})
    assert decode_cursor("history:7", cursor) == {"before": 1234}


@pytest.mark.parametrize("edit", ["flip", "truncate", "other_scope", "garbage", "huge"])
def test_an_edited_or_foreign_cursor_is_refused_naming_the_field(edit: str) -> None:
    cursor = encode_cursor("history:7", {"before": 1234})
    scope = "history:7"
    if edit == "flip":
        cursor = cursor[:-1] + ("A" if cursor[-1] != "A" else "B")
    elif edit == "truncate":
        cursor = cursor[:5]
    elif edit == "other_scope":
        scope = "history:8"
    elif edit == "garbage":
        cursor = "%%%not base64%%%"
    else:
        cursor = "A" * 600
    with pytest.raises(ApiError) as refused:
        decode_cursor(scope, cursor)
    assert (refused.value.status, refused.value.field) == (422, "cursor")
