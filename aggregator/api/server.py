"""Serving the API with uvicorn, alone (`xmargin api`) or beside the daemon (`xmargin run`)."""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

log = logging.getLogger("xmargin.api")


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: a free one), made before the server starts so
    the URL can be printed and a busy port reported in one line.

    May raise: OSError (port in use, bad host).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def server_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: signals belong to whoever runs the loop (the
    daemon, the demo, `xmargin api`), which stops the server through `ApiServer.stop`."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ApiServer:
    """A uvicorn server on an already bound socket, run as a task of the current loop."""

    def __init__(self, app: FastAPI, sock: socket.socket, *, access_log: bool = False) -> None:
        self.sock = sock
        self.url = server_url(sock)
        config = uvicorn.Config(
            app,
            loop="none",
            http="httptools",
            access_log=access_log,
            log_level="warning",
            # uvicorn's loggers go to the root logger, so `--log-format json` covers them too
            # (its own config would give them plain-text handlers of their own).
            log_config=None,
            timeout_keep_alive=30,
            timeout_graceful_shutdown=5,
            lifespan="on",
        )
        self._server = _Server(config)

    async def serve(self) -> None:
        await self._server.serve(sockets=[self.sock])

    def stop(self) -> None:
        self._server.should_exit = True

    @property
    def started(self) -> bool:
        return bool(self._server.started)
