"""``gitlab``: ``X-Gitlab-Token`` equals the secret token set on the GitLab webhook.

Delivery id: ``X-Gitlab-Event-UUID``, else ``Idempotency-Key`` (same on retries).
"""

from __future__ import annotations

from bridge.verifiers.base import (
    Secrets,
    SignedRequest,
    require_token,
)

HEADER = "X-Gitlab-Token"


class GitLab:
    name = "gitlab"

    def verify(self, request: SignedRequest, secrets: Secrets) -> None:
        """Constant-time comparison of the token header with the secret."""
        require_token(request, secrets, HEADER)

    def delivery_id(self, request: SignedRequest, payload: object) -> str | None:
        return request.header("X-Gitlab-Event-UUID") or request.header("Idempotency-Key") or None
