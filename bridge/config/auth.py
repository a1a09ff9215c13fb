"""API-key authentication for the Service-API, OpenAI and extension routes (SPEC §3).

Callers present the endpoint's ``api_key`` as ``Authorization: Bearer <key>`` or
``X-API-Key: <key>``. Comparison is constant-time; an unset key fails closed.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from werkzeug.datastructures import Headers

from bridge.config.settings import Settings
from bridge.errors import BridgeError, unauthorized

HeaderMap = Mapping[str, str] | Headers  # werkzeug's Headers is not a typing Mapping


def presented_key(headers: HeaderMap) -> str | None:
    """The key the caller presented, or None. Bearer wins over ``X-API-Key``."""
    authorization = (headers.get("Authorization") or "").strip()
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    header_key = (headers.get("X-API-Key") or "").strip()
    return header_key or None


def keys_match(expected: str, presented: str | None) -> bool:
    """Constant-time equality; False when either side is empty."""
    if not expected or not presented:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode())


def authenticate(settings: Settings, headers: HeaderMap) -> None:
    """Raise a 401 :class:`BridgeError` unless the caller presented the endpoint's key."""
    if not settings.api_key:
        raise unauthorized(
            "This endpoint has no api_key set; the workspace admin must set one in the "
            "endpoint settings."
        )
    presented = presented_key(headers)
    if presented is None:
        raise unauthorized(
            "Authorization header must be provided and start with 'Bearer' (or send X-API-Key)."
        )
    if not keys_match(settings.api_key, presented):
        raise unauthorized("Access token is invalid.")


def is_authenticated(settings: Settings, headers: HeaderMap) -> bool:
    try:
        authenticate(settings, headers)
    except BridgeError:
        return False
    return True
