"""A small server-sent-events reader for the stream tests (the format of the WHATWG spec:
`event:`, `id:`, `data:` lines, a blank line ends an event, `:` starts a comment)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class Event:
    event: str
    id: str | None
    data: str

    def json(self) -> Any:
        return json.loads(self.data)


class EventReader:
    """Events and comments of one streaming response, read with deadlines."""

    def __init__(self, response: httpx.Response) -> None:
        self._lines: AsyncIterator[str] = response.aiter_lines()
        self.comments: list[str] = []

    async def next_event(self, within: float = 10.0) -> Event:
        async with asyncio.timeout(within):
            fields: dict[str, str] = {}
            data: list[str] = []
            async for line in self._lines:
                if line == "":
                    if data or fields:
                        return Event(
                            fields.get("event", "message"), fields.get("id"), "\n".join(data)
                        )
                    continue
                if line.startswith(":"):
                    self.comments.append(line)
                    continue
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "data":
                    data.append(value)
                elif name in ("event", "id", "retry"):
                    fields[name] = value
            raise EOFError("the stream ended")

    async def next_status(self, within: float = 10.0) -> Event:
        """The next `status` or `dropped` event (skipping `retry:`-only blocks)."""
        while True:
            event = await self.next_event(within)
            if event.event == "status" or event.event == "dropped":
                return event
