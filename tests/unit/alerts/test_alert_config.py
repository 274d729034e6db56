"""`[alerts]` in config: a malformed webhook is one line naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregator.config import ConfigError, load_config

REPO = Path(__file__).resolve().parents[3]


def _config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "alerts.toml"
    path.write_text(f'extends = "{REPO / "config" / "default.toml"}"\n{body}', encoding="utf-8")
    return path


def _problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.problems


def test_a_good_webhook_loads_with_every_transition_by_default(tmp_path: Path) -> None:
    path = _config(
        tmp_path,
        '[[alerts.webhooks]]\nname = "ops"\nurl = "https://alerts.example/x?y=1"\n'
        'secret_env = "OPS_HOOK_SECRET"\nusers = ["alice"]\nmin_interval_seconds = 60\n',
    )
    [hook] = load_config(path).alerts.webhooks
    assert hook.transitions == ["warning", "margin_call", "liquidatable", "healthy", "stale"]
    assert hook.wants("margin_call", "alice") and not hook.wants("margin_call", "bob")
    assert hook.secret({"OPS_HOOK_SECRET": "s3cret"}) == b"s3cret"
    assert hook.secret({}) is None


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("htp://alerts.example/x", "'htp://alerts.example/x' is not an http(s) URL"),
        ("alerts.example/x", "'alerts.example/x' is not an http(s) URL"),
        ("https:///x", "'https:///x' has no host"),
        ("http://h:99999/x", "'http://h:99999/x' is not a valid URL: Port out of range 0-65535"),
        ("http://h/a b", "'http://h/a b' contains whitespace"),
        ("https://u:pw@h/x", "'https://u:pw@h/x': put no credentials in the URL"),
    ],
)
def test_a_malformed_webhook_url_names_the_file_and_the_key(
    tmp_path: Path, url: str, why: str
) -> None:
    path = _config(
        tmp_path,
        f'[[alerts.webhooks]]\nname = "ops"\nurl = "{url}"\nsecret_env = "OPS_HOOK_SECRET"\n',
    )
    [problem] = _problems(path)
    assert problem.startswith(f"{path}: alerts.webhooks[0].url: {why}")


def test_every_webhook_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = _config(
        tmp_path,
        '[[alerts.webhooks]]\nname = "ops"\nurl = "http://h/x"\nsecret_env = "lower"\n'
        'transitions = ["margin_call", "panic"]\n'
        '[[alerts.webhooks]]\nname = "ops"\nurl = "http://h/y"\nsecret = "inline"\n',
    )
    problems = _problems(path)
    assert (
        f"{path}: alerts.webhooks[0].secret_env: 'lower' is not an environment variable name"
        in (problems)
    )
    assert any(p.startswith(f"{path}: alerts.webhooks[0].transitions[1]: ") for p in problems)
    assert f"{path}: alerts.webhooks[1].secret: unknown key" in problems
    assert f"{path}: alerts.webhooks[1].secret_env: required key is missing" in problems
