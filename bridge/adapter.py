"""The one adapter every ``Endpoint`` calls: werkzeug request → :class:`Call` → handler →
response, with errors rendered in the route family's format, CORS headers applied, and the
body cut to what one daemon line can carry (:func:`bridge.transport.lines.bounded`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from werkzeug import Request, Response

from bridge.call import Call
from bridge.config.settings import parse_settings
from bridge.errors import Family
from bridge.transport.cors import cors_headers, preflight
from bridge.transport.fallback import unrouted_response
from bridge.transport.guard import guarded
from bridge.transport.lines import bounded


def serve(
    family: Family,
    handler: Callable[[Call], Response],
    request: Request,
    settings: Mapping,
    session: Any,
) -> Response:
    def run() -> Response:
        return handler(Call.from_request(request, settings, session))

    response = guarded(family, run)
    return bounded(with_cors(response, request, settings))


def with_cors(response: Response, request: Request, settings: Mapping) -> Response:
    """CORS headers, when the endpoint allows any origin at all."""
    if settings.get("cors_allowed_origins"):
        response.headers.update(cors_headers(parse_settings(settings), request.headers))
    return response


def serve_unrouted(request: Request, settings: Mapping) -> Response:
    """No route claims this method and path: a CORS preflight, else a family-format 404/405."""
    if request.method == "OPTIONS" and settings.get("cors_allowed_origins"):
        answer = preflight(parse_settings(settings), request.headers, request.path)
        if answer is not None:
            return bounded(answer)
    return bounded(with_cors(unrouted_response(request.method, request.path), request, settings))
