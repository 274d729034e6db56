"""Alerts that are never lost: status transitions become outbox rows in the publish transaction
(`outbox`), a deliverer posts them as signed webhooks until they are acknowledged (`deliver`,
`signing`). `config` holds the `[alerts]` table. Nothing here runs at import time."""
