"""The one interface every webhook signature scheme implements.

A scheme module defines a class with ``name``, ``verify`` and ``delivery_id``; the registry
(``bridge.verifiers``) maps the ``webhook_verification`` setting to an instance and wraps
``verify`` so that *any* exception becomes :class:`VerificationFailed` (→ 401, never 500).

Rules for every scheme:
- verify the **raw body bytes** exactly as received, before any parsing;
- compare secrets and signatures with ``hmac.compare_digest``;
- enforce the provider's replay window where the scheme signs a timestamp
  (``request.now`` is the current Unix time, injected for tests);
- messages say what is wrong (missing header, stale timestamp, mismatch) and never include
  the secret, the expected signature or the received one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

DEFAULT_TOLERANCE = 300  # seconds, Slack / Stripe / Standard Webhooks


class VerificationFailed(Exception):
    """The request is not authentic. ``str(exc)`` is safe to show to the caller."""


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """What a verifier may look at. ``headers`` keys are lower-case."""

    method: str
    headers: Mapping[str, str]
    body: bytes
    query: Mapping[str, str] = field(default_factory=dict)
    now: float = 0.0

    def header(self, name: str) -> str:
        """The header's value, stripped; empty when absent."""
        return (self.headers.get(name.lower()) or "").strip()


@dataclass(frozen=True, slots=True)
class Secrets:
    """Settings a verifier may need: ``secret`` (``webhook_secret``, or the endpoint
    ``api_key`` for the ``api_key`` scheme), ``signature_header`` (``hmac_sha256``) and
    ``token`` (``webhook_token``: the credential for URLs, ``api_key`` scheme)."""

    secret: str
    signature_header: str = ""
    token: str = ""


class Scheme(Protocol):
    name: str

    def verify(self, request: SignedRequest, secrets: Secrets) -> None:
        """Return if authentic; raise :class:`VerificationFailed` otherwise."""

    def delivery_id(self, request: SignedRequest, payload: object) -> str | None:
        """The provider's id for this delivery (same on retries), or None.

        ``payload`` is the parsed JSON body (or None when the body is not JSON).
        """


# --- helpers shared by the scheme modules -------------------------------------------------

_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")
_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


def current_time(request: SignedRequest) -> float:
    """``request.now`` when injected, else the wall clock."""
    return request.now or time.time()


def require_header(request: SignedRequest, name: str) -> str:
    """The header's value; :class:`VerificationFailed` when absent or blank."""
    value = request.header(name)
    if not value:
        raise VerificationFailed(f"missing {name} header")
    return value


def parse_timestamp(value: str, what: str) -> int:
    """Unix seconds as plain ASCII digits, else :class:`VerificationFailed`."""
    if not _UNIX_SECONDS.fullmatch(value):
        raise VerificationFailed(f"malformed {what} (expected Unix seconds)")
    return int(value)


def check_window(timestamp: float, now: float, tolerance: int = DEFAULT_TOLERANCE) -> None:
    """Reject timestamps more than ``tolerance`` seconds in the past or the future."""
    if abs(now - timestamp) > tolerance:
        raise VerificationFailed(f"timestamp outside the {tolerance} s window")


def hmac_sha256(key: str | bytes, message: bytes) -> bytes:
    """Raw HMAC-SHA256 digest; a ``str`` key is UTF-8 encoded."""
    if isinstance(key, str):
        key = key.encode()
    return hmac.new(key, message, hashlib.sha256).digest()


def parse_hex_sha256(value: str, what: str) -> bytes:
    """A 64-character hex digest (any case) as bytes, else :class:`VerificationFailed`."""
    if not _HEX_SHA256.fullmatch(value):
        raise VerificationFailed(f"malformed {what} (expected a hex SHA-256 digest)")
    return bytes.fromhex(value)


def parse_base64(value: str, what: str) -> bytes:
    """Strict standard base64, else :class:`VerificationFailed`."""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise VerificationFailed(f"malformed {what} (expected base64)") from None


def same(a: str | bytes, b: str | bytes) -> bool:
    """Constant-time equality of two strings or byte strings (any characters)."""
    if isinstance(a, str):
        a = a.encode("utf-8", "surrogatepass")
    if isinstance(b, str):
        b = b.encode("utf-8", "surrogatepass")
    return hmac.compare_digest(a, b)


def require_token(request: SignedRequest, secrets: Secrets, header: str) -> None:
    """The header must carry the shared secret itself (constant-time comparison)."""
    if not same(secrets.secret, require_header(request, header)):
        raise VerificationFailed(f"{header} does not match")


def require_body_hmac(request: SignedRequest, secrets: Secrets, received: bytes) -> None:
    """The received digest must be the HMAC-SHA256 of the raw body with the secret."""
    if not same(hmac_sha256(secrets.secret, request.body), received):
        raise VerificationFailed("signature does not match")


def payload_field(payload: object, key: str) -> str | None:
    """``payload[key]`` as text when the payload is a JSON object holding a str or int there."""
    if not isinstance(payload, dict):
        return None
    value = payload.get(key)
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return str(value) or None
