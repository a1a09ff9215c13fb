"""CORS for browser callers, from ``cors_allowed_origins`` (SPEC §2).

Empty setting → no CORS headers at all. Otherwise every response carries ``Vary: Origin``
(whether CORS headers are present depends on the caller's ``Origin``, so a shared cache must
not serve one origin's answer to another), a request whose ``Origin`` is listed (or ``*`` is
listed) gets ``Access-Control-Allow-Origin`` echoing it, and a preflight
``OPTIONS`` for a route and method that exist gets ``204`` with the allowed methods and
headers. Dify routes every ``OPTIONS`` to the plugin only when an endpoint declares it, so
the catch-all ``OPTIONS`` endpoints answer preflights.
"""

from __future__ import annotations

from werkzeug import Response

from bridge.config.auth import HeaderMap
from bridge.config.settings import Settings
from bridge.transport.routes import allowed_methods

ALLOWED_HEADERS = "Authorization, Content-Type, X-API-Key, X-Conversation-Id, Idempotency-Key"
EXPOSED_HEADERS = "X-Conversation-Id, Idempotent-Replay"
MAX_AGE = "600"


def _allowed(settings: Settings, origin: str) -> bool:
    origins = settings.cors_allowed_origins
    return bool(origin) and ("*" in origins or origin.rstrip("/") in origins)


def cors_headers(settings: Settings, headers: HeaderMap) -> dict[str, str]:
    if not settings.cors_allowed_origins:
        return {}
    origin = (headers.get("Origin") or "").strip()
    if not _allowed(settings, origin):
        return {"Vary": "Origin"}  # the answer depends on Origin even when it is refused
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Expose-Headers": EXPOSED_HEADERS,
        "Vary": "Origin",
    }


def preflight(settings: Settings, headers: HeaderMap, path: str) -> Response | None:
    """A 204 answer to an allowed preflight, or None (then the route's 404/405 applies)."""
    wanted = (headers.get("Access-Control-Request-Method") or "").upper()
    methods = allowed_methods(path)
    origin = (headers.get("Origin") or "").strip()
    if not wanted or wanted not in methods or not _allowed(settings, origin):
        return None
    base = cors_headers(settings, headers)
    response = Response(status=204)
    response.headers.update(base)
    response.headers.update({
        "Access-Control-Allow-Methods": ", ".join(methods),
        "Access-Control-Allow-Headers": ALLOWED_HEADERS,
        "Access-Control-Max-Age": MAX_AGE,
    })  # fmt: skip
    return response
