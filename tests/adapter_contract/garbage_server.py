"""A local HTTP server that answers every request with HTTP 200 and an HTML page: an endpoint
that is up but does not speak JSON-RPC (a captive portal, a misconfigured proxy)."""

from __future__ import annotations

import asyncio

GARBAGE_BODY = b"<html><body>502 upstream misconfigured, try again later</body></html>"


class GarbageServer:
    """Serves `GARBAGE_BODY` on 127.0.0.1 at a free port, on the running event loop."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> GarbageServer:
        self._server = await asyncio.start_server(self._answer, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            if length:
                await reader.readexactly(length)
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\n"
                + b"content-length: %d\r\nconnection: close\r\n\r\n" % len(GARBAGE_BODY)
                + GARBAGE_BODY
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
