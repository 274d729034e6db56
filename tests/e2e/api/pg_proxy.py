"""A TCP relay in front of the test Postgres, so a test can take the database away from a
server process and give it back (the server under test only ever sees a real Postgres).

The relay forwards to the server's TCP port, or to its Unix socket when the URL names a socket
directory (the embedded pgserver listens only there).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from sqlalchemy.engine import make_url


class PostgresRelay:
    def __init__(self, database_url: str) -> None:
        url = make_url(database_url)
        self._url = url
        socket_dir = url.query.get("host")
        host = socket_dir if isinstance(socket_dir, str) else url.host
        self._unix = (
            Path(host, f".s.PGSQL.{url.port or 5432}") if host and host.startswith("/") else None
        )
        self._target = (host or "127.0.0.1", url.port or 5432)
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        """The same database reached through the relay (TCP on 127.0.0.1)."""
        relayed = self._url.set(host="127.0.0.1", port=self.port, query={})
        return relayed.render_as_string(hide_password=False)

    async def start(self) -> None:
        """Listen (on the same port as before, after a stop)."""
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and cut every relayed connection."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if self._unix is not None:
                up_reader, up_writer = await asyncio.open_unix_connection(str(self._unix))
            else:
                up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.close()
            return
        pipes = [
            asyncio.create_task(_pipe(reader, up_writer)),
            asyncio.create_task(_pipe(up_reader, writer)),
        ]
        self._pipes.update(pipes)
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pipes:
                task.cancel()
                self._pipes.discard(task)
            for w in (writer, up_writer):
                with contextlib.suppress(Exception):
                    w.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
