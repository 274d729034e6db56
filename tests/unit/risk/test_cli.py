"""`xmargin risk evaluate`: through Typer's runner, and as a user runs it (subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from aggregator.commands.risk import risk_app

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "config" / "examples" / "portfolio.json"
XMARGIN = Path(sys.executable).parent / "xmargin"


def test_evaluate_prints_one_json_status() -> None:
    result = CliRunner().invoke(risk_app, ["evaluate", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    assert status["status"] == "healthy" and status["equity"] == "56497.5"


def test_evaluate_reads_stdin() -> None:
    result = CliRunner().invoke(risk_app, ["evaluate", "-"], input=EXAMPLE.read_text())
    assert result.exit_code == 0
    assert json.loads(result.stdout)["mode"] == "standard"


def test_bad_input_exits_2_naming_the_field() -> None:
    doc = json.loads(EXAMPLE.read_text())
    doc["holdings"][2]["amount"] = "twelve"
    result = CliRunner().invoke(risk_app, ["evaluate", "-"], input=json.dumps(doc))
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: holdings[2].amount: not a decimal number"
    assert result.stdout == ""


def test_malformed_json_and_missing_file_exit_2() -> None:
    bad = CliRunner().invoke(risk_app, ["evaluate", "-"], input="{")
    assert bad.exit_code == 2 and bad.stderr.startswith("error: input: not valid JSON")
    missing = CliRunner().invoke(risk_app, ["evaluate", str(ROOT / "no-such-file.json")])
    assert missing.exit_code == 2 and "cannot read" in missing.stderr


def test_module_entry_point_as_a_subprocess() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "aggregator.commands.risk", "evaluate", str(EXAMPLE)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["status"] == "healthy"


def test_xmargin_risk_evaluate_as_a_subprocess() -> None:
    # The installed console script, once the lead mounts risk_app as `xmargin risk`.
    run = subprocess.run(
        [str(XMARGIN), "risk", "evaluate", "-"],
        input=EXAMPLE.read_text(),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    status = json.loads(run.stdout)
    assert status["status"] == "healthy" and status["health_factor"] is not None
    bad = subprocess.run(
        [str(XMARGIN), "risk", "evaluate", "-"],
        input='{"as_of": 1}',
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert bad.returncode == 2 and bad.stderr.strip() == "error: chains: required"
