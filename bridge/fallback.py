"""Requests no route claims: 404 for unknown paths, 405 for a known path with the wrong
method, both in the error format of the family the path belongs to (SPEC §9).

Without this the SDK answers a routing miss with a plain-text 404 for both cases
(protocol.md §7.2).
"""

from __future__ import annotations

from werkzeug import Response

from bridge.errors import BridgeError, Family, error_response, not_found
from bridge.routes import allowed_methods

OPENAI_PATHS = ("/v1/chat/completions", "/v1/models")


def family_for_path(path: str) -> Family:
    return Family.OPENAI if path.rstrip("/") in OPENAI_PATHS else Family.DIFY


def unrouted(method: str, path: str) -> tuple[BridgeError, dict[str, str]]:
    """The error (and extra headers) for a request that matched no route."""
    allowed = allowed_methods(path)
    if allowed and method not in allowed:
        error = BridgeError(405, "method_not_allowed", f"Method {method} is not allowed on {path}.")
        return error, {"Allow": ", ".join(allowed)}
    return not_found(f"No route {method} {path}. See GET / on this endpoint for the routes."), {}


def unrouted_response(method: str, path: str) -> Response:
    error, headers = unrouted(method, path)
    response = error_response(error, family_for_path(path))
    response.headers.update(headers)
    return response
