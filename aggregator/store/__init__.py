"""Postgres store: models, migrations runner, repositories. Nothing connects at import time."""
