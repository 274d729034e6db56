"""Process logging for `run`, `cycle` and `api`: plain text or one JSON object per line.

JSON lines carry `time`, `level`, `logger`, `message`, and the fields a log call passes with
`extra=` (`chain`, `block`, `endpoint`, `user_id`, `webhook`, `event_id`, ...). Every line, in
either format, goes through a redactor that blanks known secrets (webhook signing secrets,
session keys, the attestation signing key, the database password) and any password in a URL,
so a secret that slips into a message or an exception never reaches the output.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from aggregator.config import LoadedConfig

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
REDACTED = "***"

# Attributes every LogRecord has; anything else on a record came in through `extra=`.
_STANDARD = set(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None))) | {"message", "asctime"}
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*:)(?P<password>[^@\s]+)(?=@)")
_SHORTEST_SECRET = 6  # shorter values would blank ordinary words


def secrets_of(config: LoadedConfig | None, env: Mapping[str, str] | None = None) -> set[str]:
    """Secret values this process may hold: what the redactor blanks. May raise: nothing."""
    env = os.environ if env is None else env
    names = {"XMARGIN_SIGNING_KEY"}
    if config is not None:
        names |= {w.secret_env for w in config.alerts.webhooks}
        prefix = config.auth.session_key_env
        for key_id in (config.auth.session_key_id, *config.auth.previous_session_key_ids):
            names.add(f"{prefix}_{key_id.upper()}")
    values = {env.get(name, "").strip() for name in names}
    database_url = env.get("XMARGIN_DATABASE_URL", "").strip()
    if database_url:
        try:
            password = make_url(database_url).password
        except ArgumentError:  # a malformed URL is reported where it is used
            password = None
        if password:
            values.add(str(password))
    return {value for value in values if len(value) >= _SHORTEST_SECRET}


class Redactor:
    """Blanks secret values and URL passwords in a formatted line."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret containing another is blanked whole.
        self._secrets = sorted(set(secrets), key=len, reverse=True)

    def __call__(self, line: str) -> str:
        for secret in self._secrets:
            line = line.replace(secret, REDACTED)
        return _URL_PASSWORD.sub(lambda m: m.group("head") + REDACTED, line)


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (RFC 3339, UTC), level, logger, message, extra fields."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redact = redactor

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, UTC)
        line: dict[str, Any] = {
            "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_") and value is not None:
                line[key] = _plain(value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return self._redact(json.dumps(line, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    """`time logger message key=value...`, redacted."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__("%(asctime)s %(name)s %(message)s")
        self._redact = redactor

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = [
            f"{key}={value}"
            for key, value in vars(record).items()
            if key not in _STANDARD and not key.startswith("_") and value is not None
        ]
        return self._redact(" ".join([text, *fields]))


def configure_logging(
    log_format: LogFormat = "text",
    *,
    secrets: Iterable[str] = (),
    level: int = logging.INFO,
    stream: TextIO | None = None,
) -> None:
    """Send the root logger's records to `stream` (stderr) in `log_format`, redacting
    `secrets`; replaces handlers set before, so later `basicConfig` calls are no-ops.

    May raise: nothing.
    """
    redactor = Redactor(secrets)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        JsonFormatter(redactor) if log_format == "json" else TextFormatter(redactor)
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # httpx logs every request URL at INFO: webhook URLs may carry tokens (Slack-style hooks).
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
