"""The procrastinate `App` over xmargin's own database.

The connector is procrastinate's psycopg one, on the URL the service resolves
(`resolve_database_url`: `XMARGIN_DATABASE_URL` or the embedded server) spelled for libpq
(`libpq_url`). Jobs live in the `procrastinate_*` tables that migration 0008 created.
"""

from __future__ import annotations

from procrastinate import App, PsycopgConnector

from aggregator.config import LoadedConfig
from aggregator.store.database import libpq_url, normalize_database_url
from aggregator.work.tasks import register_tasks


def build_app(database_url: str, config: LoadedConfig, *, max_connections: int = 10) -> App:
    """An unopened App with xmargin's tasks (open it with `async with app.open_async()`)."""
    connector = PsycopgConnector(
        conninfo=libpq_url(normalize_database_url(database_url)),
        min_size=1,
        max_size=max_connections,
    )
    app = App(connector=connector)
    register_tasks(app, config)
    return app
