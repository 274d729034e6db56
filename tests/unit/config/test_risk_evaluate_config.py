"""`xmargin risk evaluate --config`: the params a document leaves out come from [risk]."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from typer.testing import CliRunner

from aggregator.commands.risk import risk_app

REPO = Path(__file__).resolve().parents[3]


def _evaluate(*args: str) -> dict[str, object]:
    result = CliRunner().invoke(risk_app, ["evaluate", *args], env={"XMARGIN_CONFIG": ""})
    assert result.exit_code == 0, result.output
    parsed: dict[str, object] = json.loads(result.stdout, parse_float=Decimal)
    return parsed


def test_config_risk_table_supplies_missing_params(tmp_path: Path) -> None:
    example = json.loads((REPO / "config/examples/portfolio.json").read_text())
    example.pop("params", None)
    document = tmp_path / "portfolio.json"
    document.write_text(json.dumps(example))
    config = tmp_path / "no_latency.toml"
    config.write_text(f'extends = "{REPO / "config/default.toml"}"\n[risk]\nlatency_z = "0"\n')

    with_defaults = _evaluate(str(document))
    without_latency = _evaluate(str(document), "--config", str(config))

    buffers = without_latency["latency_buffers"]
    assert isinstance(buffers, dict)
    assert {b for per_chain in buffers.values() for b in per_chain.values()} == {"0"}
    default_buffers = with_defaults["latency_buffers"]
    assert isinstance(default_buffers, dict)
    assert any(b != "0" for per_chain in default_buffers.values() for b in per_chain.values())


def test_bad_config_is_reported_with_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[risk]\nlatency = "1"\n')
    result = CliRunner().invoke(risk_app, ["evaluate", "-", "--config", str(config)], input="{}")
    assert result.exit_code == 2
    assert f"{config}: risk.latency: unknown key" in result.output
