"""``shopify``: ``X-Shopify-Hmac-Sha256`` is the base64 HMAC-SHA256 of the raw body.

The key is the app's client secret. Delivery id: ``X-Shopify-Webhook-Id``.
"""

from __future__ import annotations

from bridge.verifiers.base import (
    Secrets,
    SignedRequest,
    parse_base64,
    require_body_hmac,
    require_header,
)

HEADER = "X-Shopify-Hmac-Sha256"


class Shopify:
    name = "shopify"

    def verify(self, request: SignedRequest, secrets: Secrets) -> None:
        """Check the base64 HMAC of the raw body."""
        received = parse_base64(require_header(request, HEADER), f"{HEADER} header")
        require_body_hmac(request, secrets, received)

    def delivery_id(self, request: SignedRequest, payload: object) -> str | None:
        return request.header("X-Shopify-Webhook-Id") or None
