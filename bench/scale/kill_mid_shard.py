"""Benchmark (issue 12, E4): a worker killed with SIGKILL mid-shard, N times: no shard written
twice, none skipped.

A fresh migrated database is seeded (COPY, as `bench/publish.py` seeds it) with `--users`
users x 10 stored lines on three chains, and `--workers` real `xmargin worker` processes run
the queue (`[work]`: no periodic dispatch, the reaper every second, heartbeat 0.5 s, a worker
silent 2 s is dead). Then `--kills` publish passes, one after the other; each pass:

1. moves the stored ETH price (so every user's status changes, and every shard has users
   to write) and defers one `xmargin.publish` job, as `xmargin dispatch` defers it: the pass
   job stores the market and defers one `xmargin.publish_shard` per shard;
2. waits until some `publish_shard` job is running (`doing`), waits a random part of a
   shard's time (every `--after-commit-every`th kill: until that shard's marker commits,
   polled every 2 ms, so the kill falls between the shard's commit and the job's
   completion, the case the fence is for), and kills the worker process running it
   (SIGKILL; the worker that logged starting it); notes whether that shard's marker had
   committed already
   (killed after the write, before procrastinate marked the job done) or not (killed
   before or during the shard's transaction); starts a replacement worker;
3. waits until the pass's jobs are all finished (the reaper retried the dead worker's job),
   then counts, from the database: shards with a marker (`publish_shard_marks`); users
   written per shard (a user's latest status carries its version, `seq`, +1 per write: the
   pass's delta counts its writes; the shard of a user is `user_id % shards`, as the pass
   assigns it), duplicates (a user written twice in the pass), skipped shards (no marker)
   and skipped users (not written); and from the workers' logs, runs that wrote each shard
   and runs the fence stopped.

Prints one line per pass and the totals over every kill. Asserts nothing about time; it
exits non-zero when a shard was written twice or skipped.

Run: .venv/bin/python bench/scale/kill_mid_shard.py [--kills 20] [--users 20000] [--shards 8]
         [--workers 2] [--concurrency 1]
Uses `XMARGIN_DATABASE_URL`'s server when set (a database of its own, dropped at the end),
else an embedded Postgres.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_world import bench_database
from publish import seed, set_prices, write_config
from queue_ceiling import least_squares, machine

from aggregator.config import load_config
from aggregator.store.database import libpq_url
from aggregator.work.app import build_app
from aggregator.work.locks import PUBLISH, PUBLISH_LOCK, PUBLISH_SHARD, REAP
from aggregator.work.passes import PUBLISH_PRIORITY

XMARGIN = [sys.executable, "-m", "aggregator.cli"]
WORK = """
[work]
dispatch_cron = ""
reap_cron = "* * * * * *"
heartbeat_seconds = 0.5
stalled_seconds = 2
"""
PRICES = (Decimal(2000), Decimal(3000))  # ETH, alternately
_WROTE = re.compile(r"publish shard (\d+)/(\d+) of (job:\d+): (\d+) users, (\d+) written")
_FENCED = re.compile(r"publish shard (\d+)/(\d+) of (job:\d+): skipped \(([^)]*)\)")


@dataclass
class Worker:
    """One `xmargin worker` process and what it has logged."""

    process: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, config: Path, url: str, cwd: Path, concurrency: int) -> Worker:
        process = await asyncio.create_subprocess_exec(
            *XMARGIN,
            "worker",
            "--concurrency",
            str(concurrency),
            "--config",
            str(config),
            env={**os.environ, "XMARGIN_DATABASE_URL": url},
            cwd=cwd,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        worker = cls(process)

        async def collect() -> None:
            assert process.stdout is not None
            async for raw in process.stdout:
                worker.lines.append(raw.decode("utf-8", "replace"))

        worker.reader = asyncio.create_task(collect())
        return worker

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    async def kill(self) -> None:
        if self.alive:
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()
        if self.reader is not None:
            await self.reader

    async def stop(self) -> None:
        if self.alive:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), timeout=30)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self.reader is not None:
            await self.reader


def query(url: str, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        cursor = conn.execute(sql.encode(), params)
        return list(cursor) if cursor.description else []


def running_shards(url: str) -> list[tuple[int, int]]:
    """(job id, shard index) of each running publish_shard job."""
    rows = query(
        url,
        "SELECT id, (args->>'index')::int FROM procrastinate_jobs"
        " WHERE status = 'doing' AND task_name = %s",
        (PUBLISH_SHARD,),
    )
    return [(int(str(a)), int(str(b))) for a, b in rows]


async def until_marked(url: str, pass_key: str, shard: int, deadline: float) -> None:
    """Until the shard's marker of the pass has committed (polled every 2 ms on one
    connection, so the kill lands between the shard's commit and the job's completion)."""
    async with await psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True) as conn:
        while not await (
            await conn.execute(
                "SELECT 1 FROM publish_shard_marks WHERE pass_key = %s AND shard = %s",
                (pass_key, shard),
            )
        ).fetchone():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{pass_key}: shard {shard} never committed")
            await asyncio.sleep(0.002)


def runner_of(workers: list[Worker], job_id: int) -> Worker | None:
    """The worker that started job `job_id` (procrastinate logs "Starting job <task>[<id>]")."""
    needle = f"Starting job {PUBLISH_SHARD}[{job_id}]"
    return next((w for w in workers if any(needle in line for line in w.lines)), None)


async def until_idle(url: str, within_seconds: float = 120) -> None:
    """Until no job but the reaper's is queued or running."""
    deadline = time.monotonic() + within_seconds
    while query(
        url,
        "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"
        " AND task_name <> %s",
        (REAP,),
    )[0][0]:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the queue did not drain in {within_seconds} s")
        await asyncio.sleep(0.1)


async def until_workers(url: str, count: int, within_seconds: float = 60) -> None:
    """Until `count` workers heart-beat (each has opened its services and the App)."""
    deadline = time.monotonic() + within_seconds
    alive = (
        "SELECT count(*) FROM procrastinate_workers"
        " WHERE last_heartbeat > now() - interval '2 seconds'"
    )
    while int(str(query(url, alive)[0][0])) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{count} workers did not start in {within_seconds} s")
        await asyncio.sleep(0.1)


@dataclass
class PassCount:
    pass_key: str
    shards_marked: int
    skipped_shards: int
    users_per_shard: list[int]
    duplicates: int  # users written more than once in the pass
    skipped_users: int  # users written by no run of the pass
    wrote_runs: Counter[int]  # shard → runs that logged writing it
    fenced_runs: int
    killed_shard: int
    killed_committed: bool
    seconds: float

    @property
    def shards_written_twice(self) -> int:
        return sum(1 for runs in self.wrote_runs.values() if runs > 1)


def seqs(url: str) -> dict[int, int]:
    """user → the version (`seq`) of its latest status."""
    return {
        int(str(user)): int(str(seq))
        for user, seq in query(url, "SELECT user_id, seq FROM margin_status")
    }


def count_pass(
    url: str,
    pass_key: str,
    before: dict[int, int],
    after: dict[int, int],
    users: int,
    shards: int,
    logs: list[str],
) -> tuple[int, list[int], int, int, Counter[int], int]:
    """(shards marked, users written per shard, users written twice, users not written,
    runs that logged writing each shard, runs the fence stopped). A user's status is written
    once per write of its shard (`seq` + 1), so its seq delta over the pass counts writes."""
    marked = query(url, "SELECT count(*) FROM publish_shard_marks WHERE pass_key = %s", (pass_key,))
    per_shard = [0] * shards
    duplicates = skipped = 0
    for user in range(1, users + 1):
        writes = after.get(user, 0) - before.get(user, 0)
        if writes:
            per_shard[user % shards] += 1
        duplicates += writes > 1
        skipped += writes == 0
    wrote: Counter[int] = Counter()
    fenced = 0
    for line in logs:
        if (match := _WROTE.search(line)) and match.group(3) == pass_key:
            if int(match.group(5)):
                wrote[int(match.group(1))] += 1
        elif (match := _FENCED.search(line)) and match.group(3) == pass_key:
            fenced += 1
    return int(str(marked[0][0])), per_shard, duplicates, skipped, wrote, fenced


async def run(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    async with bench_database() as (url, label):
        print(machine(url))
        print(
            f"database: {label}, fresh, migrated to head; {args.users:,} users x 10 lines on 3"
            f" chains; {args.shards} shards; {args.workers} worker processes x"
            f" {args.concurrency}; {args.kills} kills; load {os.getloadavg()[0]:.2f}"
        )
        with tempfile.TemporaryDirectory(prefix="xmargin-e4-") as directory:
            cwd = Path(directory)
            path = write_config(cwd, args.shards, 1)
            path.write_text(path.read_text() + WORK)
            config = load_config(path)
            seed(url, args.users, datetime.now(UTC))
            workers = [
                await Worker.start(path, url, cwd, args.concurrency) for _ in range(args.workers)
            ]
            dead: list[Worker] = []
            counts: list[PassCount] = []
            try:
                await until_workers(url, args.workers)
                app = build_app(url, config, max_connections=2)
                async with app.open_async():
                    shard_seconds = 0.5
                    for kill in range(args.kills):
                        with psycopg.connect(libpq_url(url)) as conn:
                            # a swing every user's equity moves by far more than 1 %
                            set_prices(conn, PRICES[kill % 2], datetime.now(UTC))
                            conn.commit()
                        before = seqs(url)
                        started = time.monotonic()
                        job = await app.configure_task(
                            PUBLISH,
                            lock=PUBLISH_LOCK,
                            queueing_lock=PUBLISH_LOCK,
                            priority=PUBLISH_PRIORITY,
                        ).defer_async()
                        pass_key = f"job:{job}"
                        deadline = time.monotonic() + 60
                        while not (doing := running_shards(url)):
                            if time.monotonic() > deadline:
                                raise RuntimeError(f"{pass_key}: no shard job started in 60 s")
                            await asyncio.sleep(0.01)
                        await asyncio.sleep(rng.uniform(0, shard_seconds))
                        doing = running_shards(url) or doing
                        job_id, shard = rng.choice(doing)
                        while (victim := runner_of(workers, job_id)) is None:
                            if time.monotonic() > deadline:
                                raise RuntimeError(f"no worker logged starting job {job_id}")
                            await asyncio.sleep(0.005)
                        if args.after_commit_every and (kill + 1) % args.after_commit_every == 0:
                            await until_marked(url, pass_key, shard, deadline)
                        await victim.kill()
                        unfinished = bool(
                            query(
                                url,
                                "SELECT 1 FROM procrastinate_jobs WHERE id = %s"
                                " AND status = 'doing'",
                                (job_id,),
                            )
                        )
                        committed = bool(
                            query(
                                url,
                                "SELECT 1 FROM publish_shard_marks"
                                " WHERE pass_key = %s AND shard = %s",
                                (pass_key, shard),
                            )
                        )
                        workers.remove(victim)
                        dead.append(victim)
                        workers.append(await Worker.start(path, url, cwd, args.concurrency))
                        await until_idle(url)
                        seconds = time.monotonic() - started
                        logs = [line for w in (*dead, *workers) for line in w.lines]
                        marked, per_shard, dupes, skipped, wrote, fenced = count_pass(
                            url, pass_key, before, seqs(url), args.users, args.shards, logs
                        )
                        count = PassCount(
                            pass_key,
                            marked,
                            args.shards - marked,
                            per_shard,
                            dupes,
                            skipped,
                            wrote,
                            fenced,
                            shard,
                            committed,
                            seconds,
                        )
                        counts.append(count)
                        shard_seconds = max(0.05, seconds / max(args.shards, 1))
                        print(
                            f"kill {kill + 1:2d} ({pass_key}): shard {shard} job {job_id}"
                            f" killed {'after' if committed else 'before'} its commit"
                            f" ({'job unfinished: retried' if unfinished else 'job done'});"
                            f" {marked}/{args.shards} shards marked,"
                            f" users per shard {min(per_shard)}-{max(per_shard)}"
                            f" (sum {sum(per_shard):,}), duplicates {dupes},"
                            f" skipped shards {count.skipped_shards}, skipped users {skipped},"
                            f" shards written twice {count.shards_written_twice},"
                            f" fenced runs {fenced}; pass {seconds:.1f} s;"
                            f" load {os.getloadavg()[0]:.2f}",
                            flush=True,
                        )
                        await until_workers(url, args.workers)
                statuses = query(
                    url,
                    "SELECT task_name, status::text, count(*), sum(attempts)"
                    " FROM procrastinate_jobs WHERE task_name <> %s GROUP BY 1, 2 ORDER BY 1, 2",
                    (REAP,),
                )
            finally:
                for worker in workers:
                    await worker.stop()
                for worker in dead:
                    await worker.kill()
    print()
    print(
        "jobs: "
        + "; ".join(f"{task} {status} {n} (attempts {a})" for task, status, n, a in statuses)
    )
    after = sum(c.killed_committed for c in counts)
    total = {
        "shards marked": sum(c.shards_marked for c in counts),
        "shards expected": args.shards * len(counts),
        "skipped shards": sum(c.skipped_shards for c in counts),
        "shards written twice": sum(c.shards_written_twice for c in counts),
        "users written": sum(sum(c.users_per_shard) for c in counts),
        "users expected": args.users * len(counts),
        "duplicate users": sum(c.duplicates for c in counts),
        "skipped users": sum(c.skipped_users for c in counts),
        "fenced runs": sum(c.fenced_runs for c in counts),
    }
    print(
        f"totals over {len(counts)} kills ({after} after the shard's commit,"
        f" {len(counts) - after} before or during it): "
        + ", ".join(f"{key} {value:,}" for key, value in total.items())
    )
    durations = [c.seconds for c in counts]
    if durations:
        print(
            f"pass with a kill: {min(durations):.1f}-{max(durations):.1f} s"
            f" (mean {sum(durations) / len(durations):.1f} s; the reaper waits stalled_seconds 2)"
        )
    if len(counts) > 1:
        # Users written against passes: a slope of exactly --users and no intercept is every
        # user written once per pass, kill or not.
        passes = [float(n) for n in range(1, len(counts) + 1)]
        written, running = [], 0
        for c in counts:
            running += sum(c.users_per_shard)
            written.append(float(running))
        slope, intercept = least_squares(passes, written)
        print(f"fit users written = {slope:,.1f} x passes + {intercept:,.1f}")
    bad = total["skipped shards"] + total["shards written twice"] + total["duplicate users"]
    bad += total["skipped users"]
    print("verdict: " + ("every shard written once" if not bad else "FAILED: see the counts"))
    return 1 if bad else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--concurrency", type=int, default=1, help="jobs at a time per worker")
    parser.add_argument(
        "--after-commit-every",
        type=int,
        default=2,
        help="every Nth kill waits for the shard's commit, then kills at once (0: never)",
    )
    parser.add_argument("--seed", type=int, default=12, help="random seed of the kill times")
    raise SystemExit(asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()
