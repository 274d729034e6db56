"""The `[alerts]` table: webhooks, which transitions each receives, and the delivery policy.

Kept free of the config loader (it imports this one) and of the store; the shared pieces come
from `aggregator.config_tables`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Annotated, Literal, get_args
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from aggregator.config_tables import _Strict, env_var_name

AlertKind = Literal["warning", "margin_call", "liquidatable", "healthy", "stale"]
ALERT_KINDS: tuple[AlertKind, ...] = get_args(AlertKind)
TEST_KIND = "test"
"""The kind of the event `xmargin alerts test` sends (never produced by a transition)."""


class WebhookConfig(_Strict):
    """One receiver. Its signing secret is never in a file: `secret_env` names the
    environment variable holding it (its UTF-8 bytes are the HMAC key)."""

    name: str
    url: str
    secret_env: str
    transitions: list[AlertKind] = Field(default_factory=lambda: list(ALERT_KINDS), min_length=1)
    users: list[str] | None = None  # user names; None: every user
    min_interval_seconds: Annotated[float, Field(ge=0)] = 0.0

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", value):
            raise ValueError(f"{value!r}: a webhook name is 1-64 of A-Z, a-z, 0-9, _ . -")
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        problem = webhook_url_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("secret_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        return env_var_name(value)

    @field_validator("transitions")
    @classmethod
    def _distinct(cls, values: list[AlertKind]) -> list[AlertKind]:
        if len(set(values)) != len(values):
            raise ValueError("a transition is listed twice")
        return values

    def wants(self, kind: str, user_name: str) -> bool:
        """True when this webhook receives `kind` events about `user_name`."""
        return kind in self.transitions and (self.users is None or user_name in self.users)

    def secret(self, env: Mapping[str, str] | None = None) -> bytes | None:
        """The signing key from the environment, or None when the variable is unset/empty."""
        value = (os.environ if env is None else env).get(self.secret_env, "")
        return value.encode() if value else None


def webhook_url_problem(url: str) -> str | None:
    """Why `url` cannot be a webhook target (an absolute http(s) URL with a host), or None."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a non-numeric or out-of-range port
    except ValueError as exc:
        return f"{url!r} is not a valid URL: {exc}"
    if parts.scheme not in ("http", "https"):
        return f"{url!r} is not an http(s) URL"
    if not parts.hostname:
        return f"{url!r} has no host"
    if any(c.isspace() for c in url):
        return f"{url!r} contains whitespace"
    if parts.username or parts.password:
        return f"{url!r}: put no credentials in the URL (the secret is in secret_env)"
    return None


class AlertSettings(_Strict):
    """Webhooks and how the deliverer treats them (retries never give up: nothing is lost)."""

    webhooks: list[WebhookConfig] = Field(default_factory=list)
    deliver_interval_seconds: Annotated[float, Field(gt=0)] = 5.0
    timeout_seconds: Annotated[float, Field(gt=0, le=120)] = 5.0
    backoff_base_seconds: Annotated[float, Field(gt=0)] = 2.0
    backoff_max_seconds: Annotated[float, Field(gt=0)] = 900.0
    batch_size: Annotated[int, Field(ge=1, le=1000)] = 100
    # A claimed event is not retried by another deliverer before this; it must outlast a POST.
    claim_lease_seconds: Annotated[float, Field(gt=0)] = 60.0

    @model_validator(mode="after")
    def _consistent(self) -> AlertSettings:
        names = [w.name for w in self.webhooks]
        if len(set(names)) != len(names):
            raise ValueError("two webhooks share a name")
        if self.claim_lease_seconds <= self.timeout_seconds:
            raise ValueError(
                f"claim_lease_seconds ({self.claim_lease_seconds:g}) must exceed timeout_seconds "
                f"({self.timeout_seconds:g}): a claim must outlast the POST it covers"
            )
        return self

    def webhook(self, name: str) -> WebhookConfig | None:
        return next((w for w in self.webhooks if w.name == name), None)
