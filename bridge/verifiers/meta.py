"""``meta``: Meta (WhatsApp, Messenger, Instagram) ``X-Hub-Signature-256: sha256=<hex>``.

The same scheme as GitHub's — HMAC-SHA256 of the raw body, here with the app secret. Meta
sends no delivery id, so none is reported; the ``GET`` ``hub.challenge`` handshake is
handled by the webhook route.
"""

from __future__ import annotations

from bridge.verifiers.base import SignedRequest
from bridge.verifiers.github import GitHub


class Meta(GitHub):
    name = "meta"

    def delivery_id(self, request: SignedRequest, payload: object) -> str | None:
        return None
