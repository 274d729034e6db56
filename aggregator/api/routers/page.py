"""`GET /`: the status page, a reference client of the public API (plain HTML, CSS and JS
shipped in the package; no build step, no CDN)."""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter
from starlette.responses import Response

from aggregator.api.errors import ApiError

router = APIRouter(include_in_schema=False)

STATIC = files("aggregator.api") / "static"
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css"}


def _asset(name: str) -> Response:
    resource = STATIC / name
    suffix = name[name.rfind(".") :] if "." in name else ""
    if suffix not in TYPES or "/" in name or not resource.is_file():
        raise ApiError(404, "not_found", f"no static file {name!r}", None)
    return Response(
        resource.read_bytes(),
        media_type=TYPES[suffix],
        headers={"Cache-Control": "no-cache", "Content-Security-Policy": _CSP},
    )


# The page talks only to this origin and loads nothing from elsewhere.
_CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'"


@router.get("/")
async def index() -> Response:
    return _asset("index.html")


@router.get("/static/{name}")
async def static(name: str) -> Response:
    return _asset(name)
