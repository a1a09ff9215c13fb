"""``discord``: Ed25519 signatures (Interactions endpoint and Webhook Events).

``X-Signature-Ed25519`` (hex) signs ``X-Signature-Timestamp + raw body``; the secret is the
application's public key (hex). The timestamp must be within 300 s of now (Discord sends
deliberately bad signatures and expects a 401). Delivery id: the interaction ``id``.
"""

from __future__ import annotations

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from bridge.verifiers.base import (
    Secrets,
    SignedRequest,
    VerificationFailed,
    check_window,
    current_time,
    parse_timestamp,
    payload_field,
    require_header,
)

SIGNATURE = "X-Signature-Ed25519"
TIMESTAMP = "X-Signature-Timestamp"


def _hex(value: str, size: int, what: str) -> bytes:
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raw = b""
    if len(raw) != size:
        raise VerificationFailed(f"{what} is not {size * 2} hex characters")
    return raw


class Discord:
    name = "discord"

    def verify(self, request: SignedRequest, secrets: Secrets) -> None:
        """Check freshness, then the Ed25519 signature with the application's public key."""
        signature = _hex(require_header(request, SIGNATURE), 64, f"{SIGNATURE} header")
        timestamp = require_header(request, TIMESTAMP)
        check_window(parse_timestamp(timestamp, f"{TIMESTAMP} header"), current_time(request))
        key = VerifyKey(_hex(secrets.secret.strip(), 32, "webhook_secret (Discord public key)"))
        try:
            key.verify(timestamp.encode() + request.body, signature)
        except BadSignatureError:
            raise VerificationFailed("signature does not match") from None

    def delivery_id(self, request: SignedRequest, payload: object) -> str | None:
        return payload_field(payload, "id")
