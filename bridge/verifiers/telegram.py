"""``telegram``: ``X-Telegram-Bot-Api-Secret-Token`` equals the ``secret_token`` of setWebhook.

Delivery id: the body's ``update_id``.
"""

from __future__ import annotations

from bridge.verifiers.base import (
    Secrets,
    SignedRequest,
    payload_field,
    require_token,
)

HEADER = "X-Telegram-Bot-Api-Secret-Token"


class Telegram:
    name = "telegram"

    def verify(self, request: SignedRequest, secrets: Secrets) -> None:
        """Constant-time comparison of the secret-token header with the secret."""
        require_token(request, secrets, HEADER)

    def delivery_id(self, request: SignedRequest, payload: object) -> str | None:
        return payload_field(payload, "update_id")
