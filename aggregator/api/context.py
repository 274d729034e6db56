"""What the API works with, built once by the composition root and handed to the app factory."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from aggregator.api.access.security import ApiKeyCache, Trust
from aggregator.api.metrics import ApiMetrics
from aggregator.api.reads.status_reader import StatusReader
from aggregator.api.reads.stream_hub import StatusHub
from aggregator.auth.signing_key import load_signing_key
from aggregator.auth.tokens import SessionKeyError, load_session_keyring
from aggregator.config import LoadedConfig
from aggregator.errors import XmarginError
from aggregator.store.database import Database

log = logging.getLogger("xmargin.api")


@dataclass
class ApiContext:
    """The config, the database, the live pieces (status reader with its cache, the stream
    hub) and the metrics; `extra_registries` are exported on /metrics too (the daemon's, when
    the API runs beside it). `trust` holds the session keyring, the attestation signing key,
    the API key lookup and the rate limiter, all made once at start-up."""

    config: LoadedConfig
    database: Database
    reader: StatusReader
    hub: StatusHub
    metrics: ApiMetrics
    trust: Trust
    extra_registries: list[CollectorRegistry] = field(default_factory=list)


def build_trust(
    config: LoadedConfig, database: Database, environ: Mapping[str, str] | None = None
) -> Trust:
    """The trust pieces from config and the environment: session keys from
    `$<session_key_env>_<ID>`, the signing key from `XMARGIN_SIGNING_KEY(_FILE)` (neither is
    ever logged; only the signer's address is).

    May raise: XmarginError (a session or signing key that is set but unusable, naming the
    variable, never its value).
    """
    settings = config.auth
    try:
        session_keys = load_session_keyring(
            settings.session_key_id,
            settings.previous_session_key_ids,
            env_prefix=settings.session_key_env,
            environ=environ,
        )
    except SessionKeyError as exc:
        raise XmarginError(f"api: {exc}") from None
    signing_key = load_signing_key(environ)  # SigningKeyError is an XmarginError
    if session_keys is None:
        log.info(
            "sign-in sessions disabled: %s_%s is not set",
            settings.session_key_env,
            settings.session_key_id.upper(),
        )
    if signing_key is None:
        log.info("attestations disabled: no XMARGIN_SIGNING_KEY or XMARGIN_SIGNING_KEY_FILE")
    elif settings.signers and signing_key.address not in settings.signers:
        log.warning("the attestation signer %s is not in [auth] signers", signing_key.address)
    return Trust(
        settings=settings,
        api_keys=ApiKeyCache(database),
        session_keys=session_keys,
        signing_key=signing_key,
    )


def build_context(
    config: LoadedConfig,
    database: Database,
    extra_registries: list[CollectorRegistry] | None = None,
) -> ApiContext:
    """Wire the API's pieces over an open database (nothing is started yet: the app's
    lifespan starts the hub).

    May raise: XmarginError (see `build_trust`).
    """
    metrics = ApiMetrics()
    reader = StatusReader(database, config, metrics)
    hub = StatusHub(
        database,
        reader,
        queue_size=config.api.stream_queue_size,
        metrics=metrics,
    )
    return ApiContext(
        config=config,
        database=database,
        reader=reader,
        hub=hub,
        metrics=metrics,
        trust=build_trust(config, database),
        extra_registries=list(extra_registries or []),
    )
