"""``telegram``: ``X-Telegram-Bot-Api-Secret-Token`` equals the ``secret_token`` of setWebhook.

Delivery id: the body's ``update_id``.
"""

from __future__ import annotations

from bridge.verifiers.base import (
    Secrets,
    SignedRequest,
    VerificationFailed,
    payload_field,
    require_header,
    same,
)

HEADER = "X-Telegram-Bot-Api-Secret-Token"


class Telegram:
    name = "telegram"

    def verify(self, request: SignedRequest, secrets: Secrets) -> None:
        """Constant-time comparison of the secret-token header with the secret."""
        if not same(secrets.secret, require_header(request, HEADER)):
            raise VerificationFailed(f"{HEADER} does not match")

    def delivery_id(self, request: SignedRequest, payload: object) -> str | None:
        return payload_field(payload, "update_id")
