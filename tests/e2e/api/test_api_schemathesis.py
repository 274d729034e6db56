"""Property-based conformance of the served OpenAPI document: schemathesis (its CLI, against
the running server) generates requests from `/openapi.json` — examples, boundary values,
random valid and invalid data, and stateful sequences following the document's links — and
every answer must be no server error and match the document (status code, content type,
headers, body schema)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from eth_account import Account

from tests.e2e.api.conftest import API_SETTINGS, ApiWorld, start_api, stop_api
from tests.e2e.conftest import OPEN_READS, write_config

SIGNER = Account.from_key("0x" + "5e" * 32)
VERIFIER = "0x000000000000000000000000000000000000bEEF"

CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    )
)


async def test_every_operation_answers_within_its_schema(world: ApiWorld, tmp_path: Path) -> None:
    # A server of its own on the world's database, with every feature configured (a signing key,
    # a session key, a verifier), so that a 5xx can only be a fault, never "not enabled here".
    config = write_config(
        tmp_path,
        {"local": [world.node.url]},
        max_staleness_seconds=3600,
        api=API_SETTINGS,
        auth={
            "require": OPEN_READS,
            "attestation_chain_id": 31337,
            "attestation_verifying_contract": VERIFIER,
            "attestation_ttl_seconds": 86_400,
            "signers": [SIGNER.address],
        },
    )
    keys = {"XMARGIN_SIGNING_KEY": SIGNER.key.hex(), "XMARGIN_SESSION_KEY_S1": "ab" * 32}
    process, base_url = await asyncio.to_thread(start_api, config, world.database_url, keys)
    try:
        await _run_schemathesis(base_url, tmp_path)
    finally:
        await asyncio.to_thread(stop_api, process)


async def _run_schemathesis(base_url: str, tmp_path: Path) -> None:
    st = Path(sys.executable).with_name("st")
    command = [
        str(st),
        "run",
        f"{base_url}/openapi.json",
        "--checks",
        CHECKS,
        "--exclude-path",
        "/v1/stream",  # never ends by itself; it has its own tests
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        "40",
        "--workers",
        "2",
        "--seed",
        "20261201",
        "--suppress-health-check",
        "all",
        "--request-timeout",
        "20",
    ]
    done = await asyncio.to_thread(
        subprocess.run,
        command,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        cwd=tmp_path,  # schemathesis keeps its run data in ./.schemathesis
    )
    output = done.stdout + done.stderr
    failures = output.find("FAILURES")
    assert done.returncode == 0, output[failures:][:12000] if failures >= 0 else output[-6000:]
    assert "No issues found" in output or " passed" in output, output[-3000:]
