"""A local Hyperliquid info server over a `World`: `POST /info` answers metaAndAssetCtxs,
clearinghouseState, spotClearinghouseState and userAbstraction in the recorded schema, under a
per-client weight limit (HTTP 429 past it, as the venue does); `POST /control` sets the world up
and tells it to fail (`{"op": "fail", "mode": "429" | "html" | "http502" | "none", "types":
[...], "count": n}`); other ops: set_mark, advance (a frozen clock), limit (the weight limit),
seed_synthetic (accounts for the benchmark), stats (requests answered, 429s sent).

In-process: `with LocalHyperliquid() as venue: ...` serves on a background thread at `venue.url`.
As a subprocess: `python -m chains.hyperliquid.localnet --port N --seed-demo`.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from chains.hyperliquid.localnet.world import World

WEIGHTS = {"clearinghouseState": 2, "spotClearinghouseState": 2, "l2Book": 2, "allMids": 2}
DEFAULT_WEIGHT = 20  # every other documented info request
HTML_ERROR = b"<html><head><title>502 Bad Gateway</title></head><body>bad gateway</body></html>"


def _json_bytes(doc: Any) -> bytes:
    # Decimal only appears where a test corrupts a response into a JSON number on purpose.
    return json.dumps(doc, default=lambda value: float(value)).encode()


class _Limiter:
    """Weight per client over a sliding window, as the venue counts it per IP."""

    def __init__(self, limit: int, window_seconds: float) -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        self._spent: dict[str, deque[tuple[float, int]]] = {}
        self._lock = threading.Lock()

    def allow(self, client: str, weight: int) -> bool:
        """Count `weight` for `client` if the window has room. May raise: nothing."""
        now = time.monotonic()
        with self._lock:
            log = self._spent.setdefault(client, deque())
            while log and log[0][0] <= now - self.window_seconds:
                log.popleft()
            if sum(w for _, w in log) + weight > self.limit:
                return False
            log.append((now, weight))
            return True


class InfoService:
    """Request handling, shared by every connection of one server."""

    def __init__(self, world: World, weight_limit: int, window_seconds: float) -> None:
        self.world = world
        self.limiter = _Limiter(weight_limit, window_seconds)
        self.calls: Counter[str] = Counter()
        self.rejected = 0  # 429s sent by the weight limit
        self._failure: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self.handlers: dict[str, Callable[[dict[str, Any]], Any]] = {
            "metaAndAssetCtxs": lambda _body: world.meta_and_asset_ctxs(),
            "clearinghouseState": lambda body: world.clearinghouse_state(str(body["user"])),
            "spotClearinghouseState": lambda body: world.spot_clearinghouse_state(
                str(body["user"])
            ),
            "userAbstraction": lambda body: world.user_abstraction(str(body["user"])),
        }

    def set_failure(self, mode: str, types: list[str] | None, count: int | None) -> None:
        """Fail `count` (None: all) requests of `types` (None: any) with `mode` ("429",
        "html", "http502"; "none" stops failing). May raise: nothing."""
        with self._lock:
            self._failure = (
                None if mode == "none" else {"mode": mode, "types": types, "left": count}
            )

    def _failing(self, kind: str) -> str | None:
        with self._lock:
            failure = self._failure
            if failure is None or (failure["types"] and kind not in failure["types"]):
                return None
            if failure["left"] is not None:
                if failure["left"] <= 0:
                    return None
                failure["left"] -= 1
            return str(failure["mode"])

    def info(self, client: str, body: Any) -> tuple[int, str, bytes]:
        """(status, content type, body) for one info request. May raise: nothing."""
        if not isinstance(body, dict) or body.get("type") not in self.handlers:
            return 422, "application/json", b'"Failed to deserialize the JSON body"'
        kind = str(body["type"])
        if kind != "metaAndAssetCtxs" and not isinstance(body.get("user"), str):
            return 422, "application/json", b'"Failed to deserialize the JSON body"'
        failing = self._failing(kind)
        if failing == "429":
            return 429, "application/json", b'"rate limited"'
        if failing == "html":
            return 200, "text/html", HTML_ERROR
        if failing == "http502":
            return 502, "text/html", HTML_ERROR
        if not self.limiter.allow(client, WEIGHTS.get(kind, DEFAULT_WEIGHT)):
            with self._lock:
                self.rejected += 1
            return 429, "application/json", b'"rate limited"'
        with self._lock:
            self.calls[kind] += 1
        return 200, "application/json", _json_bytes(self.handlers[kind](body))

    def control(self, body: dict[str, Any]) -> Any:
        """Set-up and failure injection; answers `{"ok": true}` or the asked figures.

        May raise: KeyError, ValueError, TypeError (a bad request; the handler answers 400).
        """
        op = body.get("op")
        world = self.world
        if op == "fail":
            self.set_failure(str(body.get("mode", "none")), body.get("types"), body.get("count"))
        elif op == "set_mark":
            world.set_mark(str(body["coin"]), Decimal(str(body["mark"])))
        elif op == "limit":
            self.limiter = _Limiter(int(body["weight"]), float(body["window_seconds"]))
        elif op == "advance":
            world.advance(int(body["ms"]))
        elif op == "seed_synthetic":
            from chains.hyperliquid.localnet.demo import seed_synthetic_users

            return {"users": seed_synthetic_users(world, int(body["count"]))}
        elif op == "stats":
            with self._lock:
                return {"calls": dict(self.calls), "rejected": self.rejected}
        else:
            raise ValueError(f"unknown op {op!r}")
        return {"ok": True}


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, as the venue's endpoint
    disable_nagle_algorithm = True  # headers and body go out in two writes

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        service = self.server.service
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            self._send(422, "application/json", b'"Failed to deserialize the JSON body"')
            return
        if self.path.rstrip("/") == "/control":
            try:
                if not isinstance(body, dict):
                    raise TypeError("a control request is a JSON object")
                self._send(200, "application/json", _json_bytes(service.control(body)))
            except (KeyError, ValueError, TypeError) as error:
                self._send(400, "application/json", json.dumps(str(error)).encode())
            return
        if self.path.rstrip("/") != "/info":
            self._send(404, "text/plain", b"not found")
            return
        self._send(*service.info(self.client_address[0], body))

    def _send(self, status: int, content_type: str, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # many keep-alive connections open at once (the default is 5)

    def __init__(self, address: tuple[str, int], service: InfoService) -> None:
        super().__init__(address, _Handler)
        self.service = service


class LocalHyperliquid:
    """A `World` served over HTTP on 127.0.0.1 (port 0: a free one)."""

    def __init__(
        self,
        world: World | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        weight_limit: int = 1200,
        window_seconds: float = 60.0,
        start: bool = True,
    ) -> None:
        self.world = world or World()
        self.service = InfoService(self.world, weight_limit, window_seconds)
        self._server = _Server((host, port), self.service)
        self._thread: threading.Thread | None = None
        if start:
            self._thread = threading.Thread(
                target=self._server.serve_forever, args=(0.05,), daemon=True
            )
            self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/info"

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def close(self) -> None:
        """May raise: nothing."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def __enter__(self) -> LocalHyperliquid:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
