"""`python -m aggregator.api.openapi_doc`: print the API's OpenAPI document (docs/openapi.json
is this output; a test keeps the two equal). Nothing connects to a database."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config" / "default.toml"


def openapi_document() -> dict[str, Any]:
    from aggregator.api.app import create_app
    from aggregator.api.context import build_context
    from aggregator.config import load_config
    from aggregator.store.database import Database

    config = load_config(REPO_CONFIG)
    database = Database("postgresql://openapi@localhost/unused")  # built, never connected
    document: dict[str, Any] = create_app(build_context(config, database)).openapi()
    return document


def main() -> None:
    json.dump(openapi_document(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
