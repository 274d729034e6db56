"""Benchmark (issue 12, E3): the work queue's own ceiling on this Postgres.

On a fresh migrated database (procrastinate's tables from migration 0008), with a no-op task
registered on a procrastinate `App` built as `aggregator/work/app.py` builds it (same psycopg
connector over the same URL spelling), measures:

1. defer throughput: N jobs deferred with `Task.batch_defer_async` (batches of `--batch`,
   `--defer-concurrency` batches in flight), in jobs/s; and, for comparison, `--single` jobs
   deferred one by one with `defer_async` (`--defer-concurrency` in flight), the way
   `dispatch` defers its rounds;
2. completion throughput with 1, 2 and 4 worker processes (`--processes`): the queue is
   emptied, N jobs are deferred and the table analyzed, then each process (multiprocessing
   spawn) opens its App, reports ready, waits for the common start and runs
   `app.run_worker_async(wait=False)` (`--concurrency` jobs at a time), which returns once
   it finds the queue empty. Jobs/s is N over the time from the start to the last worker's
   return, with the workers' CPU seconds and the machine's busy share; then the
   least-squares line of jobs/s against processes (slope, intercept).

Prints the machine (nproc, Python, Postgres) and asserts nothing about time.

Run: .venv/bin/python bench/scale/queue_ceiling.py [--jobs 20000] [--processes 1,2,4]
         [--concurrency 4] [--batch 1000] [--defer-concurrency 4] [--single 2000]
Uses `XMARGIN_DATABASE_URL`'s server when set (a database of its own, dropped at the end),
else an embedded Postgres.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import os
import platform
import sys
import time
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

import psycopg
from procrastinate import App, PsycopgConnector
from procrastinate.types import JSONDict

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from api_world import bench_database

from aggregator.store.database import libpq_url, normalize_database_url

TASK = "bench.noop"


async def noop(n: int) -> None:
    """The benchmark's task: does nothing, so what is measured is the queue."""


def build_bench_app(database_url: str, *, max_connections: int = 10) -> App:
    """An unopened App with the no-op task, on the connector `aggregator.work.app.build_app`
    uses (psycopg, min 1, max `max_connections`)."""
    # procrastinate warns that this App lives in `__main__`: true, and harmless here (the
    # task's name is given, and every process builds its own App)
    logging.getLogger("procrastinate.blueprints").setLevel(logging.ERROR)
    connector = PsycopgConnector(
        conninfo=libpq_url(normalize_database_url(database_url)),
        min_size=1,
        max_size=max_connections,
    )
    app = App(connector=connector)
    app.task(name=TASK)(noop)
    return app


# --- deferring ------------------------------------------------------------------------------


async def _gather_limited(count: int, limit: int, make: Any) -> None:
    semaphore = asyncio.Semaphore(limit)

    async def one(index: int) -> None:
        async with semaphore:
            await make(index)

    await asyncio.gather(*(one(index) for index in range(count)))


async def defer_batched(url: str, jobs: int, batch: int, concurrency: int) -> float:
    """Defer `jobs` no-op jobs in batches; return seconds."""
    app = build_bench_app(url, max_connections=max(concurrency, 1))
    async with app.open_async():
        task = app.tasks[TASK]
        batches = [range(start, min(start + batch, jobs)) for start in range(0, jobs, batch)]

        async def defer(index: int) -> None:
            kwargs: list[JSONDict] = [{"n": n} for n in batches[index]]
            await task.batch_defer_async(*kwargs)

        started = time.perf_counter()
        await _gather_limited(len(batches), concurrency, defer)
        return time.perf_counter() - started


async def defer_single(url: str, jobs: int, concurrency: int) -> float:
    """Defer `jobs` no-op jobs one `defer_async` each; return seconds."""
    app = build_bench_app(url, max_connections=max(concurrency, 1))
    async with app.open_async():
        task = app.tasks[TASK]

        async def defer(index: int) -> None:
            await task.defer_async(n=index)

        started = time.perf_counter()
        await _gather_limited(jobs, concurrency, defer)
        return time.perf_counter() - started


def empty_queue(url: str) -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("TRUNCATE procrastinate_jobs, procrastinate_workers CASCADE")
        conn.execute("VACUUM ANALYZE procrastinate_jobs")


def analyze_queue(url: str) -> None:
    """Give the planner the queue's real statistics. Without them (the table was empty at the
    last ANALYZE) the fetch function's cached plan may scan every row for each job, and the
    figures depend on when autovacuum happens to run."""
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("ANALYZE procrastinate_jobs")


def count_jobs(url: str) -> dict[str, int]:
    with psycopg.connect(libpq_url(url)) as conn:
        rows = conn.execute(
            "SELECT status::text, count(*) FROM procrastinate_jobs GROUP BY 1"
        ).fetchall()
    return {status: int(count) for status, count in rows}


# --- working --------------------------------------------------------------------------------


async def _work(
    url: str, concurrency: int, name: str, ready: Any, go: EventType, done: Any
) -> None:
    app = build_bench_app(url, max_connections=concurrency + 4)
    async with app.open_async():
        ready.put(name)
        await asyncio.to_thread(go.wait)
        cpu = time.process_time()
        await app.run_worker_async(
            name=name,
            concurrency=concurrency,
            wait=False,
            install_signal_handlers=False,
        )
        done.put((name, time.monotonic(), time.process_time() - cpu))


def worker_process(
    url: str, concurrency: int, name: str, ready: Any, go: EventType, done: Any
) -> None:
    asyncio.run(_work(url, concurrency, name, ready, go, done))


def cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def complete(
    url: str, processes: int, concurrency: int
) -> tuple[float, dict[str, tuple[float, float]], float]:
    """Run `processes` workers until the queue is empty; return (seconds from the common start
    to the last worker's return, each worker's (seconds, CPU seconds), the machine's busy
    share of that time)."""
    context = multiprocessing.get_context("spawn")
    ready = context.Queue()
    done = context.Queue()
    go = context.Event()
    children = [
        context.Process(
            target=worker_process,
            args=(url, concurrency, f"bench-{index}", ready, go, done),
        )
        for index in range(processes)
    ]
    for child in children:
        child.start()
    for _ in children:
        ready.get(timeout=120)
    busy, total = cpu_ticks()
    started = time.monotonic()
    go.set()
    finished: dict[str, tuple[float, float]] = {}
    for _ in children:
        name, at, cpu = done.get(timeout=600)
        finished[name] = (at - started, cpu)
    busy_after, total_after = cpu_ticks()
    for child in children:
        child.join(timeout=60)
        if child.exitcode != 0:
            raise RuntimeError(f"worker process exited {child.exitcode}")
    elapsed = max(seconds for seconds, _ in finished.values())
    share = (busy_after - busy) / max(total_after - total, 1)
    return elapsed, dict(sorted(finished.items())), share


def least_squares(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """(slope, intercept) of the least-squares line of ys on xs."""
    n = len(xs)
    mean_x = sum(xs) / n
    mean_y = sum(ys) / n
    sxx = sum((x - mean_x) ** 2 for x in xs)
    if sxx == 0:
        return 0.0, mean_y
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sxx
    return slope, mean_y - slope * mean_x


# --- main -----------------------------------------------------------------------------------


def machine(url: str) -> str:
    with psycopg.connect(libpq_url(url)) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        max_connections = conn.execute("SHOW max_connections").fetchone()
    version = row[0] if row else "?"
    maximum = max_connections[0] if max_connections else "?"
    return (
        f"machine: nproc {len(os.sched_getaffinity(0))}, {platform.machine()},"
        f" Python {platform.python_version()}, Postgres {version}"
        f" (max_connections {maximum}), procrastinate {_procrastinate_version()}"
    )


def _procrastinate_version() -> str:
    from importlib.metadata import version

    return version("procrastinate")


async def run(args: argparse.Namespace) -> None:
    process_counts = [int(p) for p in args.processes.split(",") if p.strip()]
    async with bench_database() as (url, label):
        print(machine(url))
        print(f"database: {label}, fresh, migrated to head")
        print(
            f"jobs {args.jobs}; batch {args.batch}, {args.defer_concurrency} defers in flight;"
            f" {args.concurrency} jobs at a time per worker process"
        )
        if args.single:
            empty_queue(url)
            seconds = await defer_single(url, args.single, args.defer_concurrency)
            print(
                f"defer one by one (defer_async): {args.single} jobs in {seconds:.2f} s,"
                f" {args.single / seconds:,.0f} jobs/s"
            )
        rates: list[float] = []
        for processes in process_counts:
            empty_queue(url)
            seconds = await defer_batched(url, args.jobs, args.batch, args.defer_concurrency)
            print(
                f"defer batched (batch_defer_async): {args.jobs} jobs in {seconds:.2f} s,"
                f" {args.jobs / seconds:,.0f} jobs/s"
            )
            analyze_queue(url)
            elapsed, each, busy = await asyncio.to_thread(
                complete, url, processes, args.concurrency
            )
            counts = count_jobs(url)
            if counts.get("succeeded", 0) != args.jobs:
                raise RuntimeError(f"not every job succeeded: {counts}")
            rate = args.jobs / elapsed
            rates.append(rate)
            returned = ", ".join(f"{seconds:.2f}" for seconds, _ in each.values())
            cpu = sum(cpu for _, cpu in each.values())
            print(
                f"complete with {processes} worker process(es): {args.jobs} jobs in"
                f" {elapsed:.2f} s, {rate:,.0f} jobs/s ({rate / processes:,.0f} per process;"
                f" workers returned at {returned} s; workers' CPU {cpu:.1f} s,"
                f" machine busy {busy:.0%})"
            )
        if len(rates) >= 2:
            slope, intercept = least_squares([float(p) for p in process_counts], rates)
            print(
                f"fit jobs/s = {slope:,.1f} x processes + {intercept:,.1f}"
                f" (least squares over {', '.join(map(str, process_counts))} processes)"
            )
        empty_queue(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--processes", default="1,2,4")
    parser.add_argument("--concurrency", type=int, default=4, help="jobs at a time per worker")
    parser.add_argument("--batch", type=int, default=1000, help="jobs per batch_defer_async")
    parser.add_argument("--defer-concurrency", type=int, default=4, help="defers in flight")
    parser.add_argument("--single", type=int, default=2000, help="jobs deferred one by one")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
