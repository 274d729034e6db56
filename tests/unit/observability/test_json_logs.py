"""`--log-format json`: one object per line with the call's fields; secrets never printed."""

from __future__ import annotations

import io
import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from aggregator.api.server import ApiServer
from aggregator.config import load_config
from aggregator.ops.logs import configure_logging, secrets_of

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_json_lines_carry_the_fields_and_blank_secrets(
    restore_logging: None, tmp_path: Path
) -> None:
    path = tmp_path / "x.toml"
    path.write_text(
        f'extends = "{REPO / "config" / "default.toml"}"\n'
        '[[alerts.webhooks]]\nname = "ops"\nurl = "http://h/x"\nsecret_env = "HOOK_SECRET"\n',
        encoding="utf-8",
    )
    env = {
        "HOOK_SECRET": "hook-secret-value-1",
        "XMARGIN_SESSION_KEY_S1": "ab" * 32,
        "XMARGIN_SIGNING_KEY": "0x" + "cd" * 32,
        "XMARGIN_DATABASE_URL": "postgresql://xm:db-pass-word@db.internal/xmargin",
    }
    secrets = secrets_of(load_config(path), env)
    assert secrets == {"hook-secret-value-1", "ab" * 32, "0x" + "cd" * 32, "db-pass-word"}
    out = io.StringIO()
    configure_logging("json", secrets=secrets, stream=out)
    log = logging.getLogger("xmargin.test")
    log.info("poll %s: block %d", "base", 42, extra={"chain": "base", "block": 42})
    log.warning(
        "oops hook-secret-value-1 at postgresql://xm:db-pass-word@db.internal/x and %s",
        "https://user:other-pw@rpc.example/v2/key",
        extra={"endpoint": "https://rpc.example", "user_id": 7, "note": "ab" * 32},
    )
    try:
        raise ValueError("session key " + "ab" * 32)
    except ValueError:
        log.exception("failed", extra={"webhook": "ops"})
    text = out.getvalue()
    for secret in (*secrets, "other-pw"):
        assert secret not in text
    first, second, third = (json.loads(line) for line in text.splitlines())
    assert first["message"] == "poll base: block 42"
    assert (first["level"], first["logger"], first["chain"], first["block"]) == (
        "info",
        "xmargin.test",
        "base",
        42,
    )
    assert first["time"].endswith("Z")
    assert second["message"] == (
        "oops *** at postgresql://xm:***@db.internal/x and https://user:***@rpc.example/v2/key"
    )
    assert (second["endpoint"], second["user_id"], second["note"]) == (
        "https://rpc.example",
        7,
        "***",
    )
    assert third["webhook"] == "ops" and "ValueError: session key ***" in third["exception"]


def test_the_api_servers_own_log_lines_are_json_too(restore_logging: None) -> None:
    out = io.StringIO()
    configure_logging("json", stream=out)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        ApiServer(FastAPI(), sock, access_log=True)  # configures uvicorn's loggers
    logging.getLogger("uvicorn.error").warning("worker %s stopped", 3)
    logging.getLogger("uvicorn.access").warning("GET /v1/chains 200")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(line["logger"], line["message"]) for line in lines] == [
        ("uvicorn.error", "worker 3 stopped"),
        ("uvicorn.access", "GET /v1/chains 200"),
    ]
