"""Requests no route claims: 404 for unknown paths, 405 for a known path with the wrong
method, both in the error format of the family the path belongs to (SPEC §9).

Without this the SDK answers a routing miss with a plain-text 404 for both cases
(protocol.md §7.2).
"""

from __future__ import annotations

from werkzeug import Response

from bridge.errors import BridgeError, Family, error_response, not_found
from bridge.transport.routes import allowed_methods

# The first segment after ``/v1/`` of every resource in OpenAI's API reference (and the
# legacy ones clients still call). None collides with a Dify Service-API path except
# ``files`` (Dify's ``/v1/files/upload`` and ``/v1/files/<id>/preview``, kept in Dify's
# format) and ``conversations`` (Dify's own conversation API: left out, a Dify route).
OPENAI_RESOURCES = frozenset({
    "assistants", "audio", "batches", "chat", "chatkit", "completions", "containers",
    "edits", "embeddings", "engines", "evals", "files", "fine-tunes", "fine_tuning",
    "images", "models", "moderations", "organization", "realtime", "responses", "threads",
    "uploads", "vector_stores", "videos",
})  # fmt: skip


def family_for_path(path: str) -> Family:
    """OpenAI's error format on OpenAI's paths under ``/v1/``, Dify's everywhere else."""
    parts = path.strip("/").split("/")
    if len(parts) < 2 or parts[0] != "v1" or parts[1] not in OPENAI_RESOURCES:
        return Family.DIFY
    if parts[1] == "files" and (parts[2:] == ["upload"] or parts[3:] == ["preview"]):
        return Family.DIFY
    return Family.OPENAI


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
