"""Error envelopes.

Every failure becomes a :class:`BridgeError` and is rendered in the format of the route
family that received the request (SPEC §9):

- ``dify``   — Dify's ``{"code", "message", "status"}`` (Service API, extension, webhook)
- ``openai`` — OpenAI's ``{"error": {"message", "type", "param", "code"}}``

Nothing else reaches a caller: unexpected exceptions become a generic 500 whose body and
log line carry the exception *type* only, never its text, repr or traceback.
"""

from __future__ import annotations

import json
import logging
from enum import Enum

from werkzeug import Response

logger = logging.getLogger(__name__)


class Family(Enum):
    """Route families, each with its own error format."""

    DIFY = "dify"
    OPENAI = "openai"


class BridgeError(Exception):
    """A failure with an HTTP status, a snake_case code and a message safe to show."""

    def __init__(self, status: int, code: str, message: str, *, param: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param


def invalid_param(message: str, *, param: str | None = None) -> BridgeError:
    return BridgeError(400, "invalid_param", message, param=param)


def unauthorized(message: str) -> BridgeError:
    return BridgeError(401, "unauthorized", message)


def not_found(message: str = "Not Found.") -> BridgeError:
    return BridgeError(404, "not_found", message)


def unsupported_media_type(message: str) -> BridgeError:
    return BridgeError(415, "unsupported_media_type", message)


def payload_too_large(message: str) -> BridgeError:
    return BridgeError(413, "payload_too_large", message)


def invalid_setting(name: str, problem: str) -> BridgeError:
    """An endpoint setting the admin must fix; names the setting, never echoes secrets."""
    return BridgeError(503, "invalid_setting", f"Endpoint setting '{name}' {problem}", param=name)


def internal_error() -> BridgeError:
    return BridgeError(500, "internal_server_error", "Internal Server Error.")


_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",  # what OpenAI itself answers for a bad key
    403: "permission_error",
    404: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
}


def error_body(error: BridgeError, family: Family) -> dict:
    """The JSON object for ``error`` in ``family``'s format."""
    if family is Family.OPENAI:
        kind = _OPENAI_TYPES.get(error.status, "server_error" if error.status >= 500 else "")
        return {
            "error": {
                "message": error.message,
                "type": kind or "invalid_request_error",
                "param": error.param,
                "code": "invalid_api_key" if error.code == "unauthorized" else error.code,
            }
        }
    return {"code": error.code, "message": error.message, "status": error.status}


def error_response(error: BridgeError, family: Family) -> Response:
    body = json.dumps(error_body(error, family))
    return Response(body, status=error.status, content_type="application/json")


def describe_exception(exc: BaseException) -> str:
    """A log-safe description: the exception's type only (its text may carry secrets)."""
    return type(exc).__name__
