"""Operator API keys on real Postgres: stored hashed, authenticated by public id in constant
time, revocable; and the `xmargin keys` commands over them."""

from __future__ import annotations

import hashlib
import re

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from aggregator.auth.errors import AuthError
from aggregator.cli import app
from aggregator.store.accounts.auth import (
    ApiKeyExists,
    UnknownApiKey,
    authenticate_api_key,
    create_api_key,
    find_api_key,
    list_api_keys,
    revoke_api_key,
)
from aggregator.store.database import Database


async def test_a_created_key_is_stored_only_as_its_hash(db: Database) -> None:
    async with db.session() as session:
        row, key = await create_api_key(session, "frontend", "read", rate_per_minute=120)
    assert re.fullmatch(r"xmk_[0-9a-f]{12}_[0-9a-f]{64}", key)
    assert (row.name, row.scope, row.rate_per_minute, row.active) == ("frontend", "read", 120, True)
    async with db.session() as session:
        stored = (await session.execute(text("SELECT * FROM api_keys"))).mappings().one()
    assert stored["key_hash"] == hashlib.sha256(key.encode()).hexdigest()
    assert key not in {str(value) for value in stored.values()}
    assert row.key_hash not in repr(row)


async def test_the_key_authenticates_and_near_misses_do_not(db: Database) -> None:
    async with db.session() as session:
        row, key = await create_api_key(session, "frontend", "link")
        assert (await authenticate_api_key(session, key)).id == row.id
        wrong_secret = key[:-1] + ("0" if key[-1] != "0" else "1")
        unknown_id = "xmk_000000000000_" + key.rsplit("_", 1)[1]
        for presented in (wrong_secret, unknown_id):
            with pytest.raises(AuthError) as caught:
                await authenticate_api_key(session, presented)
            assert (caught.value.field, caught.value.reason) == ("authorization", "invalid_key")
        with pytest.raises(AuthError) as caught:
            await authenticate_api_key(session, "Bearer " + key)
        assert caught.value.reason == "malformed"


async def test_a_revoked_key_stops_working_and_keeps_its_first_revocation(db: Database) -> None:
    async with db.session() as session:
        _, key = await create_api_key(session, "frontend", "admin")
    async with db.session() as session:
        first = await revoke_api_key(session, "frontend")
    async with db.session() as session:
        again = await revoke_api_key(session, "frontend")
        assert first.revoked_at is not None and again.revoked_at == first.revoked_at
        with pytest.raises(AuthError) as caught:
            await authenticate_api_key(session, key)
        assert caught.value.reason == "invalid_key"


async def test_names_are_unique_and_unknown_names_are_refused(db: Database) -> None:
    async with db.session() as session:
        await create_api_key(session, "frontend", "read")
        with pytest.raises(ApiKeyExists):
            await create_api_key(session, " frontend ", "admin")
        with pytest.raises(UnknownApiKey):
            await revoke_api_key(session, "nobody")
        with pytest.raises(ValueError):
            await create_api_key(session, "x", "read", rate_per_minute=0)


async def test_list_and_find_return_every_key_by_id(db: Database) -> None:
    async with db.session() as session:
        a, _ = await create_api_key(session, "a", "read")
        b, _ = await create_api_key(session, "b", "admin")
        await revoke_api_key(session, "a")
        listed = await list_api_keys(session)
        assert [(k.name, k.active) for k in listed] == [("a", False), ("b", True)]
        found = await find_api_key(session, b.public_id)
        assert found is not None and found.name == "b"
        assert await find_api_key(session, "ffffffffffff") is None
    assert a.id < b.id


def test_keys_commands_create_list_and_revoke(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XMARGIN_DATABASE_URL", database_url)
    monkeypatch.delenv("XMARGIN_CONFIG", raising=False)
    runner = CliRunner()
    name = "cli-key"
    created = runner.invoke(
        app, ["keys", "create", name, "--scope", "link", "--rate-per-minute", "30"]
    )
    assert created.exit_code == 0, created.output
    key = created.stdout.strip()
    assert re.fullmatch(r"xmk_[0-9a-f]{12}_[0-9a-f]{64}", key)
    listed = runner.invoke(app, ["keys", "list"])
    assert listed.exit_code == 0, listed.output
    line = next(line for line in listed.stdout.splitlines() if line.startswith(name + "\t"))
    assert "\tlink\t30/min\tactive\t" in line
    assert key not in listed.stdout
    assert hashlib.sha256(key.encode()).hexdigest() not in listed.stdout
    assert runner.invoke(app, ["keys", "create", name, "--scope", "read"]).exit_code == 2
    assert runner.invoke(app, ["keys", "create", "other", "--scope", "write"]).exit_code == 2
    revoked = runner.invoke(app, ["keys", "revoke", name])
    assert revoked.exit_code == 0 and f"revoked API key {name}" in revoked.stdout
    assert "\trevoked " in runner.invoke(app, ["keys", "list"]).stdout
    assert runner.invoke(app, ["keys", "revoke", "nobody"]).exit_code == 2
