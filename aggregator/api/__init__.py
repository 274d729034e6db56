"""The HTTP API for front ends (design §7): FastAPI, one router per resource.

`create_app(build_context(config, database))` builds it; `aggregator.api.server` serves it.
"""
