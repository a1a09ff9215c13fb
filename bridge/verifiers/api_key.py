"""``api_key``: the endpoint's api_key as ``Authorization: Bearer``, ``X-API-Key`` or ``?api_key=``.

The query form is for senders that can only configure a URL.
"""

from __future__ import annotations

from bridge.verifiers.base import Secrets, SignedRequest, VerificationFailed, same


class ApiKey:
    name = "api_key"

    def verify(self, request: SignedRequest, secrets: Secrets) -> None:
        """Pass when any presented key equals the endpoint's api_key."""
        presented = self._presented(request)
        if not presented:
            raise VerificationFailed(
                "missing API key (send Authorization: Bearer, X-API-Key or ?api_key=)"
            )
        matches = [same(secrets.secret, key) for key in presented]  # compare all, no early exit
        if not any(matches):
            raise VerificationFailed("API key does not match")

    def delivery_id(self, request: SignedRequest, payload: object) -> str | None:
        """A generic ``Idempotency-Key`` header, if the sender sets one."""
        return request.header("Idempotency-Key") or None

    @staticmethod
    def _presented(request: SignedRequest) -> list[str]:
        scheme, _, token = request.header("Authorization").partition(" ")
        candidates = [
            token.strip() if scheme.lower() == "bearer" else "",
            request.header("X-API-Key"),
            (request.query.get("api_key") or "").strip(),
        ]
        return [key for key in candidates if key]
