"""Benchmark: the HTTP API under load, beside the ceiling of its stack, and the live stream.

World (bench/api_world.py): a fresh database (on the `XMARGIN_DATABASE_URL` server, else an
embedded pgserver), an anvil with the demo contracts, one user with two wallets polled and
published by the real code, and 1,000 more users whose statuses are published directly.

1. `GET /v1/users/{user}/margin` of the published user, served by `xmargin api --port 0` in a
   subprocess (uvloop + httptools, one process), loaded by `wrk` on loopback (2 threads,
   64 connections, 10 s after a 2 s warm-up): requests/s, p50/p99, responses >= 400.
2. The same for a bare Starlette app (one route, a constant small JSON) on uvicorn with the
   same settings in another subprocess: the ceiling of the stack. Then the ratio API/bare.
   Also (skip with --no-same-size) the bare app returning the API's own response bytes: the
   ceiling at that body size, which tells the framework's cost from the cost of the bytes.
3. Stream: 1,000 SSE clients (`GET /v1/stream?user=<u>`, one user each, raw asyncio sockets in
   2 client processes) connect and get their snapshot; then ONE publish pass changes all 1,000
   users (equity +10 %, one transaction) and the time from its commit until each client has its
   `status` event with the new `id:` is measured.

Prints figures beside the targets of issue 7 (>= 2,000 req/s, p99 <= 25 ms, >= 50 % of the bare
rate; stream <= 1 s); asserts nothing. Stops everything it started, also on failure.

Needs `wrk` (Debian: `apt-get install -y wrk`; the bench installs it when run as root).
Run: .venv/bin/python bench/api_load.py [--threads 2] [--connections 64] [--duration 10]
     [--warmup 2] [--stream-clients 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from decimal import Decimal
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
LUA = HERE / "api_load.lua"
ROUTE = "/v1/users/{user}/margin"
TARGET_RPS = 2_000
TARGET_P99_MS = 25.0
TARGET_RATIO = 0.5
TARGET_STREAM_S = 1.0
CLIENT_PROCESSES = 2
BARE_BODY = b'{"user":"bench","status":"healthy","health_factor":"1.85"}'
BARE_BYTES = len(BARE_BODY)


def log(message: str) -> None:
    print(f"[api_load {time.strftime('%H:%M:%S')}] {message}", flush=True)


def raise_nofile(wanted: int = 65_536) -> int:
    """Raise this process's open-file limit (children inherit it); returns the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# --- the bare server (this script run with --bare-server) -----------------------------------


SIZED = "/sized"


def serve_bare(body_file: Path) -> None:
    """A bare Starlette app on uvicorn with the settings of `xmargin api` (uvloop, httptools,
    one process, no access log): `ROUTE` returns a constant small JSON (the ceiling), `SIZED`
    the constant bytes of `body_file` (the API's own response body: the ceiling at that size)."""
    import uvicorn
    import uvloop
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from aggregator.api.server import bind_socket, server_url

    body = BARE_BODY

    sized = body_file.read_bytes()

    async def margin(request: Request) -> Response:
        return Response(body, media_type="application/json")

    async def same_size(request: Request) -> Response:
        return Response(sized, media_type="application/json")

    app = Starlette(routes=[Route(ROUTE, margin), Route(SIZED, same_size)])
    sock = bind_socket("127.0.0.1", 0)
    config = uvicorn.Config(
        app,
        loop="none",
        http="httptools",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=30,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    print(f"bare starlette at {server_url(sock)}", flush=True)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(server.serve(sockets=[sock]))


# --- server subprocesses --------------------------------------------------------------------


@dataclass
class Served:
    name: str
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@contextlib.contextmanager
def serving(
    name: str, argv: list[str], env: dict[str, str], log_path: Path, pattern: str
) -> Iterator[Served]:
    """Run a server subprocess until the block ends (SIGTERM, then SIGKILL after 10 s); its
    URL is read from its output (kept in `log_path`)."""
    with log_path.open("wb") as out:
        process = subprocess.Popen(
            argv, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    try:
        deadline = time.monotonic() + 60
        url = None
        while url is None:
            found = re.search(pattern, log_path.read_text(errors="replace"))
            if found:
                url = found.group(1)
            elif process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"{name} did not start (exit {process.poll()}):\n{log_path.read_text()[-3000:]}"
                )
            else:
                time.sleep(0.05)
        yield Served(name, process, url, log_path)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# --- wrk ------------------------------------------------------------------------------------


def find_wrk() -> str:
    """The path of `wrk`, installed from Debian when missing and this runs as root."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("wrk not found: installing it from Debian (apt-get install -y wrk)")
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False)
        found = shutil.which("wrk")
        if not found:
            subprocess.run(["apt-get", "update", "-q"], check=False)
            subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False)
            found = shutil.which("wrk")
    if not found:
        sys.exit("bench/api_load.py needs wrk: install it with `sudo apt-get install -y wrk`")
    return found


@dataclass(frozen=True)
class Load:
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    status_errors: int  # responses with a status >= 400, as wrk counts them
    socket_errors: int  # connect, read, write and timeout errors
    server_cpu: float  # CPU seconds the server used during the measured run
    wrk_cpu: float  # CPU seconds wrk used during the measured run

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Profiler:
    """py-spy (`--profile DIR`): samples a server process into DIR/<name>.txt, collapsed
    stacks (one `frame;frame;... count` a line, flame-graph input)."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self.pyspy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        if directory is not None:
            if not Path(self.pyspy).exists():
                sys.exit("--profile needs py-spy: .venv/bin/pip install py-spy")
            directory.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, pid: int, seconds: float) -> subprocess.Popen[bytes] | None:
        if self.directory is None:
            return None
        output = self.directory / f"{name}.txt"
        argv = [self.pyspy, "record", "--pid", str(pid), "--duration", str(int(seconds))]
        argv += ["--rate", "250", "--nonblocking", "--format", "raw", "--output", str(output)]
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)  # py-spy attaches
        return process

    @staticmethod
    def finish(process: subprocess.Popen[bytes] | None) -> None:
        if process is not None:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def run_wrk(
    args: argparse.Namespace, wrk: str, served: Served, path: str, header: str | None = None
) -> Load:
    url = served.url + path
    common = [wrk, f"-t{args.threads}", f"-c{args.connections}", "--latency", "-s", str(LUA)]
    if header is not None:
        common += ["-H", header]
    if args.warmup > 0:
        subprocess.run([*common, f"-d{args.warmup}s", url], capture_output=True, check=True)
    profiler = Profiler(args.profile)
    name = served.name.replace(" ", "-") + ("-sized" if path == SIZED else "")
    name += "-keyed" if header is not None else ""
    spy = profiler.start(name, served.process.pid, args.duration)
    cpu0, wrk0 = served.cpu_seconds(), children_cpu()
    done = subprocess.run(
        [*common, f"-d{args.duration}s", url],
        capture_output=True,
        text=True,
        check=True,
        timeout=args.duration + 60,
    )
    cpu1, wrk1 = served.cpu_seconds(), children_cpu()
    profiler.finish(spy)
    found = re.search(r"^WRK_JSON (\{.*\})$", done.stdout, re.MULTILINE)
    if not found:
        raise RuntimeError(f"no summary from wrk:\n{done.stdout}\n{done.stderr}")
    figures = json.loads(found.group(1))
    return Load(
        requests=figures["requests"],
        seconds=figures["duration_us"] / 1e6,
        p50_ms=figures["p50_us"] / 1000,
        p90_ms=figures["p90_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        max_ms=figures["max_us"] / 1000,
        status_errors=figures["errors_status"],
        socket_errors=sum(figures[f"errors_{k}"] for k in ("connect", "read", "write", "timeout")),
        server_cpu=cpu1 - cpu0,
        wrk_cpu=wrk1 - wrk0,
    )


def in_app_quantiles(text: str, route: str, quantiles: tuple[float, ...]) -> dict[float, str]:
    """Upper bucket bounds of the API's own latency histogram for `route` (time inside the
    app, from its outermost middleware to the end of the response) at `quantiles`."""
    buckets: list[tuple[float, float]] = []
    for line in text.splitlines():
        if line.startswith("xmargin_http_request_duration_seconds_bucket{") and (
            f'route="{route}"' in line and 'method="GET"' in line
        ):
            found = re.search(r'le="([^"]+)"', line)
            if found:
                buckets.append((float(found.group(1)), float(line.split()[-1])))
    buckets.sort()
    if not buckets or buckets[-1][1] == 0:
        return {}
    total = buckets[-1][1]
    out: dict[float, str] = {}
    for q in quantiles:
        for bound, count in buckets:
            if count >= q * total:
                out[q] = "> 2.5 s" if bound == float("inf") else f"<= {bound * 1000:g} ms"
                break
    return out


def metric_counts(text: str, route: str) -> dict[str, float]:
    """Requests by status code of `route` from the API's /metrics."""
    counts: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("xmargin_http_requests_total{") and f'route="{route}"' in line:
            status = re.search(r'status="(\d+)"', line)
            if status:
                counts[status.group(1)] = counts.get(status.group(1), 0) + float(line.split()[-1])
    return counts


def cache_counts(text: str) -> dict[str, float]:
    counts: dict[str, float] = {}
    for line in text.splitlines():
        found = re.match(r'xmargin_status_cache_lookups_total\{result="(\w+)"\} (\S+)', line)
        if found:
            counts[found.group(1)] = float(found.group(2))
    return counts


# --- stream clients (in client processes) ---------------------------------------------------


class ChunkedDecoder:
    """Incremental HTTP/1.1 chunked transfer decoding."""

    def __init__(self) -> None:
        self.buffer = b""
        self.remaining = -1  # bytes left of the current chunk; -1: expecting a size line
        self.finished = False

    def feed(self, data: bytes) -> bytes:
        self.buffer += data
        out = []
        while not self.finished:
            if self.remaining < 0:
                end = self.buffer.find(b"\r\n")
                if end < 0:
                    break
                size = int(self.buffer[:end].split(b";", 1)[0], 16)
                self.buffer = self.buffer[end + 2 :]
                if size == 0:
                    self.finished = True
                    break
                self.remaining = size
            if len(self.buffer) < self.remaining + 2:
                break
            out.append(self.buffer[: self.remaining])
            self.buffer = self.buffer[self.remaining + 2 :]
            self.remaining = -1
        return b"".join(out)


@dataclass
class ClientState:
    name: str
    connected_at: float = 0.0  # when the snapshot event arrived
    snapshot_id: str | None = None
    update_id: str | None = None
    updated_at: float = 0.0
    error: str | None = None


async def sse_client(
    host: str,
    port: int,
    state: ClientState,
    gate: asyncio.Semaphore,
    snapshots: asyncio.Event,
    counters: dict[str, int],
    total: int,
    stop: asyncio.Event,
) -> None:
    writer = None

    def count(key: str) -> None:
        counters[key] += 1
        if counters["snapshot"] + counters["failed"] >= total:
            snapshots.set()

    try:
        async with gate:  # bounds concurrent connects (until the snapshot arrives)
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(
                f"GET /v1/stream?user={state.name} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                "Accept: text/event-stream\r\n\r\n".encode()
            )
            head = await reader.readuntil(b"\r\n\r\n")
            status_line, *header_lines = head.decode("latin-1").split("\r\n")
            if " 200 " not in status_line + " ":
                raise RuntimeError(status_line)
            chunked = any(
                h.lower().startswith("transfer-encoding:") and "chunked" in h.lower()
                for h in header_lines
            )
            decoder = ChunkedDecoder() if chunked else None
            text = b""
            while state.snapshot_id is None:
                text = await _read_events(reader, decoder, text, state)
            state.connected_at = time.monotonic()
            count("snapshot")
        while state.update_id is None and not stop.is_set():
            text = await _read_events(reader, decoder, text, state)
        if state.update_id is not None:
            counters["updated"] += 1
        await stop.wait()
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        state.error = f"{type(exc).__name__}: {exc}"
        if state.snapshot_id is None:
            count("failed")
        else:
            counters["updated_failed"] += 1
    finally:
        if writer is not None:
            writer.close()


async def _read_events(
    reader: asyncio.StreamReader,
    decoder: ChunkedDecoder | None,
    text: bytes,
    state: ClientState,
) -> bytes:
    data = await reader.read(65_536)
    now = time.monotonic()
    if not data:
        raise ConnectionError("stream closed")
    text += decoder.feed(data) if decoder is not None else data
    while True:
        end = text.find(b"\n\n")
        if end < 0:
            return text
        block, text = text[:end], text[end + 2 :]
        event, event_id = "message", None
        for line in block.split(b"\n"):
            if line.startswith(b"event:"):
                event = line[6:].strip().decode()
            elif line.startswith(b"id:"):
                event_id = line[3:].strip().decode()
        if event == "dropped":
            raise RuntimeError("dropped by the server")
        if event != "status" or event_id is None:
            continue
        if state.snapshot_id is None:
            state.snapshot_id = event_id
        elif state.update_id is None and event_id != state.snapshot_id:
            state.update_id = event_id
            state.updated_at = now


def stream_worker(
    host: str, port: int, names: list[str], conn: Connection, connect_concurrency: int
) -> None:
    """One client process: wait for "go", connect every client and report the snapshots,
    then wait (up to the deadline the parent sends) for every update and report them."""
    import uvloop

    raise_nofile()

    async def run() -> None:
        loop = asyncio.get_running_loop()
        conn.send(("hello",))
        await loop.run_in_executor(None, conn.recv)  # "go"
        started = time.monotonic()
        gate = asyncio.Semaphore(connect_concurrency)
        snapshots, stop = asyncio.Event(), asyncio.Event()
        counters = {"snapshot": 0, "failed": 0, "updated": 0, "updated_failed": 0}
        states = [ClientState(name) for name in names]
        tasks = [
            asyncio.create_task(
                sse_client(host, port, s, gate, snapshots, counters, len(names), stop)
            )
            for s in states
        ]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(snapshots.wait(), 90)
        errors = [s.error for s in states if s.error and s.snapshot_id is None]
        conn.send(("ready", started, time.monotonic(), counters["snapshot"], errors[:5]))
        _, deadline = await loop.run_in_executor(None, conn.recv)  # ("deadline", monotonic)
        while counters["updated"] + counters["updated_failed"] < counters["snapshot"]:
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.005)
        report = [(s.name, s.snapshot_id, s.update_id, s.updated_at, s.error) for s in states]
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        conn.send(("done", report))

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(run())


@dataclass(frozen=True)
class StreamFigures:
    clients: int
    connected: int
    connect_seconds: float
    publish_seconds: float  # publish_statuses + commit of the 1,000 changes
    changed: int
    delivered: int
    wrong_id: int
    max_seconds: float | None
    p50_seconds: float | None
    p99_seconds: float | None
    errors: list[str]


async def _recv(conn: Connection, seconds: float) -> Any:
    def wait() -> Any:
        if not conn.poll(seconds):
            raise TimeoutError("a stream client process did not answer")
        return conn.recv()

    return await asyncio.to_thread(wait)


async def measure_stream(
    args: argparse.Namespace, api: Served, database_url: str, template: Any, users: dict[str, int]
) -> StreamFigures:
    from api_world import copied_record

    from aggregator.store.database import Database
    from aggregator.store.published.statuses import publish_statuses

    address = re.match(r"http://([^:/]+):(\d+)", api.url)
    if address is None:
        raise RuntimeError(f"not an http URL: {api.url}")
    host, port = address.groups()
    names = sorted(users)
    context = multiprocessing.get_context("spawn")
    workers: list[tuple[multiprocessing.process.BaseProcess, Connection]] = []
    try:
        for index in range(CLIENT_PROCESSES):
            parent, child = context.Pipe()
            process = context.Process(
                target=stream_worker,
                args=(
                    host,
                    int(port),
                    names[index::CLIENT_PROCESSES],
                    child,
                    args.connect_concurrency,
                ),
                daemon=True,
            )
            process.start()
            workers.append((process, parent))
        for _, conn in workers:
            await _recv(conn, 60)  # hello
        # The changed statuses are made before the clock starts: equity +10 % for every user.
        changed = [
            copied_record(template, uid, name, Decimal("1.1")) for name, uid in users.items()
        ]
        for _, conn in workers:
            conn.send(("go",))
        ready = [await _recv(conn, 120) for _, conn in workers]
        connect_seconds = max(r[2] for r in ready) - min(r[1] for r in ready)
        connected = sum(r[3] for r in ready)
        errors = [e for r in ready for e in r[4]]
        log(
            f"stream: {connected}/{len(names)} clients have their snapshot "
            f"in {connect_seconds:.2f} s"
        )
        await asyncio.sleep(0.5)  # let the server settle after the connect burst
        database = Database(database_url)
        try:
            async with database.session() as session:  # warm the pool: not part of the figure
                pass
            profiler = Profiler(args.profile)
            spy = await asyncio.to_thread(profiler.start, "xmargin-api-stream", api.process.pid, 4)
            t0 = time.monotonic()
            async with database.session() as session:
                count = await publish_statuses(session, changed)
            committed = time.monotonic()
        finally:
            await database.dispose()
        for _, conn in workers:
            conn.send(("deadline", committed + 20))
        reports = [await _recv(conn, 60) for _, conn in workers]
        await asyncio.to_thread(profiler.finish, spy)
    finally:
        for worker, _ in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.terminate()
                worker.join(timeout=5)
    delays: list[float] = []
    wrong = 0
    for _, report in reports:
        for _name, snapshot_id, update_id, updated_at, error in report:
            if error:
                errors.append(error)
            if snapshot_id is None or update_id is None:
                continue
            if not (snapshot_id.isdigit() and update_id == str(int(snapshot_id) + 1)):
                wrong += 1
            delays.append(updated_at - committed)
    delays.sort()
    return StreamFigures(
        clients=len(names),
        connected=connected,
        connect_seconds=connect_seconds,
        publish_seconds=committed - t0,
        changed=count,
        delivered=len(delays),
        wrong_id=wrong,
        max_seconds=delays[-1] if delays else None,
        p50_seconds=statistics.median(delays) if delays else None,
        p99_seconds=delays[min(len(delays) - 1, int(len(delays) * 0.99))] if delays else None,
        errors=errors[:5],
    )


# --- the run --------------------------------------------------------------------------------


def _mark(ok: bool) -> str:
    return "met" if ok else "NOT met"


def figures_block(
    args: argparse.Namespace,
    world_label: str,
    api_body: int,
    api: Load,
    keyed: Load,
    bare: Load,
    sized: Load | None,
    api_counts: dict[str, float],
    in_app: dict[float, str],
    cache: dict[str, float],
    stream: StreamFigures | None,
    stream_error: str | None,
) -> str:
    ratio = api.rps / bare.rps if bare.rps else 0.0
    setting = f"wrk {args.threads} threads, {args.connections} connections, {args.duration} s"
    lines = [
        "",
        "=" * 78,
        f"xmargin API load ({setting} after a {args.warmup} s warm-up; loopback; "
        f"{os.cpu_count()} cores, shared with wrk)",
        f"database: {world_label}",
        "-" * 78,
    ]
    rows = [
        (f"API  GET {ROUTE} (anonymous: reads open)", api),
        (
            f"API  GET {ROUTE} with a read API key (checked, rate-limited, RateLimit-* headers)",
            keyed,
        ),
        (f"bare Starlette, constant {BARE_BYTES} B JSON", bare),
    ]
    if sized is not None:
        rows.append((f"bare Starlette, constant {api_body:,} B JSON (the API's body)", sized))
    for label, load in rows:
        lines += [
            f"{label}",
            f"  requests/s {load.rps:10,.0f}   p50 {load.p50_ms:7.2f} ms"
            f"   p90 {load.p90_ms:7.2f} ms   p99 {load.p99_ms:7.2f} ms   max {load.max_ms:7.1f} ms",
            f"  requests {load.requests:,}, non-2xx (>= 400) {load.status_errors}, "
            f"socket errors {load.socket_errors}; server CPU {load.server_cpu / load.seconds:.0%} "
            f"of a core, wrk CPU {load.wrk_cpu / load.seconds:.0%} of a core",
        ]
    non_2xx = sum(n for status, n in api_counts.items() if not status.startswith("2"))
    lines += [
        f"  API body {api_body:,} bytes; server-side count for the route: "
        + ", ".join(f"{s}: {int(n):,}" for s, n in sorted(api_counts.items()))
        + f" (non-2xx {int(non_2xx)})"
        + (
            "; status cache " + ", ".join(f"{k} {int(v):,}" for k, v in sorted(cache.items()))
            if cache
            else ""
        ),
        *(
            [
                "  time inside the app (its latency histogram, whole run): "
                + ", ".join(f"p{q * 100:g} {bound}" for q, bound in in_app.items())
            ]
            if in_app
            else []
        ),
        "-" * 78,
        f"API requests/s {api.rps:,.0f}   target >= {TARGET_RPS:,}: {_mark(api.rps >= TARGET_RPS)}",
        f"API p99 {api.p99_ms:.2f} ms      target <= {TARGET_P99_MS:.0f} ms: "
        f"{_mark(api.p99_ms <= TARGET_P99_MS)}",
        f"API / bare {ratio:.0%}          target >= {TARGET_RATIO:.0%}: "
        f"{_mark(ratio >= TARGET_RATIO)}",
    ]
    if sized is not None and sized.rps:
        lines.append(f"(API / bare with the same {api_body:,} B body: {api.rps / sized.rps:.0%})")
    lines.append(
        f"(with a read API key: {keyed.rps:,.0f} req/s, p99 {keyed.p99_ms:.2f} ms, "
        f"{keyed.rps / bare.rps if bare.rps else 0:.0%} of bare)"
    )
    lines += [
        "-" * 78,
    ]
    if stream is None:
        lines.append(f"stream: not measured ({stream_error})")
    else:
        lines += [
            f"stream: {stream.connected:,}/{stream.clients:,} SSE clients (one user each, "
            f"{CLIENT_PROCESSES} client processes) had their snapshot after "
            f"{stream.connect_seconds:.2f} s",
            f"  one publish pass of {stream.clients:,} users (equity +10 %): "
            f"{stream.changed:,} changed, publish_statuses + commit {stream.publish_seconds:.3f} s",
        ]
        if stream.max_seconds is None:
            lines.append("  no client received its update")
        else:
            assert stream.p50_seconds is not None and stream.p99_seconds is not None
            lines += [
                f"  from the commit: {stream.delivered:,}/{stream.connected:,} clients had the "
                f"new event; p50 {stream.p50_seconds * 1000:.0f} ms, p99 "
                f"{stream.p99_seconds * 1000:.0f} ms, max {stream.max_seconds * 1000:.0f} ms"
                + (f"; {stream.wrong_id} with an unexpected id" if stream.wrong_id else ""),
                f"  all delivered within {stream.max_seconds:.3f} s   target <= "
                f"{TARGET_STREAM_S:.0f} s: "
                + _mark(
                    stream.delivered == stream.clients and stream.max_seconds <= TARGET_STREAM_S
                ),
            ]
        if stream.errors:
            lines.append(f"  client errors (first {len(stream.errors)}): {stream.errors}")
    if args.profile is not None:
        lines.append(
            f"py-spy profiles (collapsed stacks; figures above are slowed): {args.profile}"
        )
    lines.append("=" * 78)
    return "\n".join(lines)


async def _bench_key(database_url: str) -> str:
    """A read key with a rate limit no load run reaches."""
    from aggregator.store.accounts import auth as auth_repo
    from aggregator.store.database import Database

    database = Database(database_url)
    try:
        async with database.session() as session:
            _, key = await auth_repo.create_api_key(
                session, "bench", "read", rate_per_minute=1_000_000_000
            )
    finally:
        await database.dispose()
    return key


async def run(args: argparse.Namespace) -> None:
    import httpx
    from api_world import add_published_users, build_world

    limit = raise_nofile()
    wrk = find_wrk()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="xmargin-bench-api-") as tmp:
        directory = Path(tmp)
        log("building the world (database, anvil, poll, publish)")
        async with build_world(directory) as world:
            log(f"world built in {time.monotonic() - started:.1f} s ({world.database_label})")
            users = await add_published_users(world.database_url, world.record, args.stream_clients)
            log(f"{len(users):,} stream users published ({time.monotonic() - started:.1f} s)")
            env = {**os.environ, "XMARGIN_DATABASE_URL": world.database_url}
            api_argv = [
                sys.executable,
                "-m",
                "aggregator.cli",
                "api",
                "--port",
                "0",
                "--config",
                str(world.config_path),
            ]
            body_file = directory / "api-body.json"
            bare_argv = [sys.executable, str(HERE / "api_load.py"), "--bare-server", str(body_file)]
            path = ROUTE.replace("{user}", world.user)
            with serving(
                "xmargin api", api_argv, env, directory / "api.log", r"xmargin api at (\S+)"
            ) as api:
                async with httpx.AsyncClient(timeout=10) as http:
                    response = await http.get(api.url + path)
                if response.status_code != 200:
                    raise RuntimeError(f"API {path}: {response.status_code} {response.text}")
                api_body = len(response.content)
                body_file.write_bytes(response.content)
                with serving(
                    "bare", bare_argv, env, directory / "bare.log", r"bare starlette at (\S+)"
                ) as bare:
                    log(f"servers up (open-file limit {limit}); loading the API with wrk")
                    api_load = await asyncio.to_thread(run_wrk, args, wrk, api, path)
                    log(f"API: {api_load.rps:,.0f} req/s; with an API key")
                    key = await _bench_key(world.database_url)
                    keyed_load = await asyncio.to_thread(
                        run_wrk, args, wrk, api, path, f"Authorization: Bearer {key}"
                    )
                    log(f"API, keyed: {keyed_load.rps:,.0f} req/s; loading the bare endpoint")
                    bare_load = await asyncio.to_thread(run_wrk, args, wrk, bare, path)
                    log(f"bare: {bare_load.rps:,.0f} req/s")
                    sized_load = None
                    if args.same_size:
                        sized_load = await asyncio.to_thread(run_wrk, args, wrk, bare, SIZED)
                        log(f"bare, the API's body: {sized_load.rps:,.0f} req/s")
                async with httpx.AsyncClient(timeout=10) as http:
                    metrics = (await http.get(api.url + "/metrics")).text
                stream: StreamFigures | None = None
                stream_error = None
                if args.stream_clients > 0:
                    log(f"stream: connecting {args.stream_clients:,} SSE clients")
                    try:
                        stream = await measure_stream(
                            args, api, world.database_url, world.record, users
                        )
                    except Exception as exc:  # still print the HTTP figures
                        stream_error = f"{type(exc).__name__}: {exc}"
                        log(f"stream failed: {stream_error}\n{api.tail()}")
                else:
                    stream_error = "--stream-clients 0"
                if api.process.poll() is not None:
                    log(f"the API process exited early:\n{api.tail()}")
        log(f"everything stopped; {time.monotonic() - started:.1f} s in all")
    print(
        figures_block(
            args,
            world.database_label,
            api_body,
            api_load,
            keyed_load,
            bare_load,
            sized_load,
            metric_counts(metrics, ROUTE),
            in_app_quantiles(metrics, ROUTE, (0.5, 0.99, 0.999)),
            cache_counts(metrics),
            stream,
            stream_error,
        ),
        flush=True,
    )


@contextlib.asynccontextmanager
async def cancelled_on_sigterm() -> AsyncIterator[None]:
    """SIGTERM cancels the run like Ctrl-C does, so every clean-up block runs."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


async def main(args: argparse.Namespace) -> None:
    async with cancelled_on_sigterm():
        await run(args)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--duration", type=int, default=10, help="seconds measured per target")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per target")
    parser.add_argument("--stream-clients", type=int, default=1000, help="SSE clients (0: none)")
    parser.add_argument(
        "--connect-concurrency", type=int, default=50, help="connects in flight per process"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="sample the servers with py-spy during the measured runs into DIR (slows them)",
    )
    parser.add_argument(
        "--no-same-size",
        dest="same_size",
        action="store_false",
        help="skip the bare endpoint that returns the API's own body",
    )
    parser.add_argument("--bare-server", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    options = parse_args()
    if options.bare_server:
        serve_bare(options.bare_server)
    else:
        try:
            asyncio.run(main(options))
        except (KeyboardInterrupt, asyncio.CancelledError):
            sys.exit("api_load: interrupted; everything it started is stopped")
