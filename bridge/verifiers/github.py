"""``github``: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>``.

Delivery id: ``X-GitHub-Delivery`` (a GUID, unchanged on redelivery). GitHub signs no
timestamp, so deduplication on that id is the replay defence.
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

HEADER = "X-Hub-Signature-256"


class GitHub:
    name = "github"

    def verify(self, request: SignedRequest, secrets: Secrets) -> None:
        """Check the ``sha256=`` HMAC of the raw body."""
        prefix, sep, digest = require_header(request, HEADER).partition("=")
        if not sep or prefix.lower() != "sha256":
            raise VerificationFailed(f"malformed {HEADER} header (expected sha256=<hex>)")
        received = parse_hex_sha256(digest, f"{HEADER} header")
        require_body_hmac(request, secrets, received)

    def delivery_id(self, request: SignedRequest, payload: object) -> str | None:
        return request.header("X-GitHub-Delivery") or None
