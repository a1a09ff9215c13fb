"""``hmac_sha256``: hex HMAC-SHA256 of the raw body in a configurable header.

The header is ``webhook_signature_header``; the value may carry a ``sha256=`` prefix and the
hex digits may be in any case.
"""

from __future__ import annotations

from bridge.verifiers.base import (
    Secrets,
    SignedRequest,
    VerificationFailed,
    parse_hex_sha256,
    require_body_hmac,
    require_header,
)


class HmacSha256:
    name = "hmac_sha256"

    def verify(self, request: SignedRequest, secrets: Secrets) -> None:
        """Check the body's HMAC against the configured header."""
        header = secrets.signature_header.strip()
        if not header:
            raise VerificationFailed("no webhook_signature_header configured")
        value = require_header(request, header)
        if value[:7].lower() == "sha256=":
            value = value[7:]
        received = parse_hex_sha256(value, f"{header} header")
        require_body_hmac(request, secrets, received)

    def delivery_id(self, request: SignedRequest, payload: object) -> str | None:
        """A generic ``Idempotency-Key`` header, if the sender sets one."""
        return request.header("Idempotency-Key") or None
