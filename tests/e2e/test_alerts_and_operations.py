"""Alerts, logs, metrics and operator commands, run as an operator runs them: `xmargin run`
killed with SIGKILL while deliveries fail, `xmargin alerts test`, `xmargin cycle --log-format
json`, `xmargin run --no-api --metrics-port`, `xmargin users list --status`."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url

from aggregator.alerts.config import WebhookConfig
from aggregator.store.accounts.users import add_user
from aggregator.store.database import Database
from aggregator.store.published.statuses import publish_statuses
from tests.alert_receiver import Receiver
from tests.e2e.conftest import REPO, XMARGIN, Chain, Cli, write_config
from tests.integration.alerts.alert_builders import status

SECRET_ENV = "XMARGIN_E2E_HOOK_SECRET"
SECRET = "whsec-e2e-9f8e7d6c5b4a"


def _config(directory: Path, url: str, **alerts: Any) -> Path:
    settings = {
        "deliver_interval_seconds": 0.2,
        "timeout_seconds": 1,
        "claim_lease_seconds": 2,
        "backoff_base_seconds": 0.3,
        "backoff_max_seconds": 0.6,
        **alerts,
    }
    lines = [
        f'extends = "{REPO / "config" / "default.toml"}"',
        "[alerts]",
        *(f"{key} = {json.dumps(value)}" for key, value in settings.items()),
        "[[alerts.webhooks]]",
        'name = "ops"',
        f'url = "{url}"',
        f'secret_env = "{SECRET_ENV}"',
    ]
    path = directory / "alerts.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def _seed_events(db: Database, url: str, names: list[str]) -> list[str]:
    """Users whose statuses go to margin_call in one publish pass with the webhook: the outbox
    rows `publish` writes; their event ids."""
    hook = WebhookConfig(name="ops", url=url, secret_env=SECRET_ENV)
    async with db.session() as session:
        ids = [await add_user(session, name) for name in names]
    async with db.session() as session:
        await publish_statuses(session, [status(i, "margin_call") for i in ids], webhooks=[hook])
    async with db.session() as session:
        rows = await session.execute(text("SELECT event_id FROM alert_events ORDER BY id"))
        return [row.event_id for row in rows]


async def _states(db: Database) -> dict[str, int]:
    async with db.session() as session:
        rows = await session.execute(
            text("SELECT state, count(*) AS n FROM alert_events GROUP BY state")
        )
        return {row.state: row.n for row in rows}


async def _wait_for_states(db: Database, expected: dict[str, int], within: float) -> dict[str, int]:
    deadline = time.monotonic() + within
    while True:
        states = await _states(db)
        if states == expected or time.monotonic() > deadline:
            return states
        await asyncio.sleep(0.1)


class Daemon:
    def __init__(self, config: Path, env: dict[str, str], cwd: Path) -> None:
        self.config, self.env, self.cwd = config, env, cwd
        self.lines: list[str] = []
        self.process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self, *extra: str) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *XMARGIN,
            "run",
            "--no-api",
            "--metrics-port",
            "0",
            "--log-format",
            "json",
            *extra,
            "--config",
            str(self.config),
            env=self.env,
            cwd=self.cwd,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        self._reader = asyncio.create_task(self._collect())

    async def _collect(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        async for raw in self.process.stdout:
            self.lines.append(raw.decode())

    async def stop(self, sig: int) -> int:
        assert self.process is not None and self._reader is not None
        if self.process.returncode is None:
            self.process.send_signal(sig)
        code = await asyncio.wait_for(self.process.wait(), timeout=30)
        await self._reader
        return code

    async def metrics_url(self, within: float = 20) -> str:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for line in self.lines:
                if m := re.search(r"metrics at (http://\S+/metrics)", line):
                    return m.group(1)
            await asyncio.sleep(0.05)
        raise AssertionError("no metrics URL logged:\n" + "".join(self.lines))


async def test_events_survive_a_sigkill_while_deliveries_fail_and_all_arrive(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    async with Receiver(SECRET.encode(), fail_first=4) as receiver:
        event_ids = await _seed_events(db, receiver.url, [f"k{i}" for i in range(5)])
        assert len(event_ids) == 5
        env = {**os.environ, "XMARGIN_DATABASE_URL": database_url, SECRET_ENV: SECRET}
        env.pop("XMARGIN_CONFIG", None)
        config = _config(tmp_path, receiver.url)

        first = Daemon(config, env, tmp_path)
        await first.start()
        tried = await receiver.wait_for(lambda: len(receiver.per_key()) == 5, within=30)
        assert tried, "".join(first.lines)
        assert await first.stop(signal.SIGKILL) == -signal.SIGKILL
        assert receiver.acknowledged() == set()  # killed while every delivery was failing
        assert await _states(db) == {"pending": 5}

        second = Daemon(config, env, tmp_path)
        await second.start()
        try:
            arrived = await receiver.wait_for(lambda: len(receiver.acknowledged()) == 5, 30)
            assert arrived, "".join(second.lines)
            assert await _wait_for_states(db, {"delivered": 5}, within=10) == {"delivered": 5}
            async with httpx.AsyncClient(timeout=5) as http:
                scrape = (await http.get(await second.metrics_url())).text
        finally:
            assert await second.stop(signal.SIGTERM) == 0, "".join(second.lines)

    # Every event arrived, counted by idempotency key; each was tried 4 times before.
    assert receiver.acknowledged() == set(event_ids)
    assert all(count >= 5 for count in receiver.per_key().values()), receiver.per_key()
    assert all(r.signed for r in receiver.requests)
    assert 'xmargin_alert_deliveries_total{outcome="delivered",webhook="ops"} 5.0' in scrape
    assert "xmargin_alerts_pending 0.0" in scrape
    assert 'xmargin_users_by_status{status="margin_call"} 5.0' in scrape
    # --log-format json: every line one object; failed deliveries carry their fields.
    records = [json.loads(line) for line in first.lines + second.lines]
    failures = [r for r in records if r.get("webhook") == "ops" and r["level"] == "warning"]
    assert failures and {r["event_id"] for r in failures} <= set(event_ids)
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    assert SECRET not in "".join(first.lines + second.lines)


async def test_alerts_test_sends_a_signed_test_event(
    xmargin: Cli, db: Database, tmp_path: Path
) -> None:
    async with Receiver(SECRET.encode()) as receiver:
        config = _config(tmp_path, receiver.url)
        # In a thread: the receiver answers from this test's event loop meanwhile.
        done = await asyncio.to_thread(
            xmargin,
            "alerts",
            "test",
            "--webhook",
            "ops",
            config=config,
            extra_env={SECRET_ENV: SECRET},
        )
    assert done.code == 0, done.stderr
    [request] = receiver.requests
    assert request.signed and request.event["type"] == "test" and request.answered == 200
    assert re.fullmatch(
        rf"alert test {request.key} to ops: delivered, attempt 1, \d+ ms\n", done.stdout
    )
    assert await _states(db) == {"delivered": 1}

    unknown = xmargin("alerts", "test", "--webhook", "nope", config=config)
    assert (unknown.code, unknown.stderr) == (
        2,
        f"error: unknown webhook 'nope' in {config} (known: ops)\n",
    )


async def test_cycle_json_logs_keep_secrets_out_and_a_failing_receiver_keeps_the_event(
    xmargin: Cli, db: Database, database_url: str, tmp_path: Path
) -> None:
    async with Receiver(SECRET.encode(), mode="fail") as receiver:
        event_ids = await _seed_events(db, receiver.url, ["pat"])
        config = _config(tmp_path, receiver.url)
        # The same server, reached with a password in the URL (trust auth ignores it).
        password = "db-pa55-e2e-secret"
        url = make_url(database_url).set(password=password).render_as_string(hide_password=False)
        session_key = "ab" * 32
        done = await asyncio.to_thread(
            xmargin,
            "cycle",
            "--log-format",
            "json",
            config=config,
            extra_env={
                SECRET_ENV: SECRET,
                "XMARGIN_DATABASE_URL": url,
                "XMARGIN_SESSION_KEY_S1": session_key,
            },
        )
    assert done.code == 0, done.stderr
    assert done.stdout == ""
    records = [json.loads(line) for line in done.stderr.splitlines()]
    messages = [r["message"] for r in records]
    assert "publish: 0 users, 0 written, 0 changed" in messages
    [failed] = [r for r in records if r.get("event_id")]
    assert (failed["level"], failed["webhook"], failed["event_id"], failed["status_code"]) == (
        "warning",
        "ops",
        event_ids[0],
        500,
    )
    assert "alerts: 0 delivered, 1 failed (retried later), 1 pending" in messages
    for secret in (SECRET, password, session_key):
        assert secret not in done.stderr
    assert len(receiver.requests) == 1 and receiver.requests[0].signed
    assert await _states(db) == {"pending": 1}


async def test_users_list_status_puts_the_nearest_to_liquidation_first(
    xmargin: Cli, db: Database, tmp_path: Path
) -> None:
    async with db.session() as session:
        ids = {name: await add_user(session, name) for name in ("ann", "bo", "cy", "di", "ed")}
    records = [
        status(ids["ann"], "margin_call", health_factor="1.08", health_maint="300"),
        status(ids["bo"], "liquidatable", health_factor="0.91", health_maint="-50"),
        status(ids["cy"], "margin_call", health_factor="1.02", health_maint="9000"),
        status(ids["di"], "healthy", health_factor="3"),
        status(ids["ed"], "margin_call", health_factor="1.08", health_maint="120"),
    ]
    async with db.session() as session:
        await publish_statuses(session, records)
    config = REPO / "config" / "devnet.toml"

    calls = xmargin("users", "list", "--status", "margin_call", "--json", config=config)
    assert calls.code == 0, calls.stderr
    assert [(r["user"], r["health_factor"], r["health_maint_usd"]) for r in calls.json()] == [
        ("cy", "1.02", "9000"),
        ("ed", "1.08", "120"),  # same factor: the smaller USD buffer first
        ("ann", "1.08", "300"),
    ]
    both = xmargin(
        "users", "list", "--status", "margin_call", "--status", "liquidatable", config=config
    )
    assert both.code == 0, both.stderr
    lines = both.stdout.splitlines()
    assert lines[0].split("\t") == [
        "id",
        "user",
        "status",
        "health_factor",
        "health_maint_usd",
        "equity_usd",
        "stale",
    ]
    assert [line.split("\t")[1] for line in lines[1:]] == ["bo", "cy", "ed", "ann"]
    everyone = xmargin("users", "list", "--json", config=config)
    assert [r["user"] for r in everyone.json()] == ["ann", "bo", "cy", "di", "ed"]
    bad = xmargin("users", "list", "--status", "panic", config=config)
    assert bad.code == 2


async def test_metrics_port_without_api_exports_endpoints_and_heads(
    chain: Chain, db: Database, database_url: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path, {"local": [chain.url]})
    env = {**os.environ, "XMARGIN_DATABASE_URL": database_url}
    env.pop("XMARGIN_CONFIG", None)
    daemon = Daemon(config, env, tmp_path)
    await daemon.start()
    try:
        url = await daemon.metrics_url()
        endpoint = chain.url.rstrip("/")
        wanted = f'xmargin_rpc_requests_total{{chain="local",endpoint="{endpoint}"}}'
        deadline = time.monotonic() + 30
        async with httpx.AsyncClient(timeout=5) as http:
            while True:
                scrape = (await http.get(url)).text
                if ("xmargin_head_age_seconds{" in scrape and wanted in scrape) or (
                    time.monotonic() > deadline
                ):
                    break
                await asyncio.sleep(0.2)
    finally:
        assert await daemon.stop(signal.SIGTERM) == 0, "".join(daemon.lines)
    values = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in scrape.splitlines()
        if line and not line.startswith("#")
    }
    assert values[wanted] >= 1, scrape
    assert values[f'xmargin_rpc_errors_total{{chain="local",endpoint="{endpoint}"}}'] == 0
    assert values['xmargin_head_height{chain="local"}'] >= 1
    assert 0 <= values['xmargin_head_age_seconds{chain="local"}'] < 600
    assert values['xmargin_polls_total{chain="local",outcome="ok"}'] >= 1
    polls = [json.loads(line) for line in daemon.lines if '"chain": "local"' in line]
    assert any(r["logger"] == "xmargin.poll" and r["block"] >= 1 for r in polls), daemon.lines
