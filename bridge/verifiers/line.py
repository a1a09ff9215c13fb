"""``line``: ``X-Line-Signature`` is the base64 HMAC-SHA256 of the raw body.

The key is the channel secret. Delivery id: the ``webhookEventId`` of each entry in the
body's ``events``, sorted and joined with ``,`` (None for the empty verification call).
"""

from __future__ import annotations

from bridge.verifiers.base import (
    Secrets,
    SignedRequest,
    parse_base64,
    require_body_hmac,
    require_header,
)

HEADER = "X-Line-Signature"


class Line:
    name = "line"

    def verify(self, request: SignedRequest, secrets: Secrets) -> None:
        """Check the base64 HMAC of the raw body with the channel secret."""
        received = parse_base64(require_header(request, HEADER), f"{HEADER} header")
        require_body_hmac(request, secrets, received)

    def delivery_id(self, request: SignedRequest, payload: object) -> str | None:
        events = payload.get("events") if isinstance(payload, dict) else None
        if not isinstance(events, list):
            return None
        ids = sorted(
            event["webhookEventId"]
            for event in events
            if isinstance(event, dict) and isinstance(event.get("webhookEventId"), str)
        )
        return ",".join(ids) or None
