"""``api_key``: the endpoint's key as ``Authorization: Bearer``, ``X-API-Key`` or in the URL.

The URL form (``?token=`` or ``?api_key=``) is for senders that can only configure a URL. URLs
end up in access logs, so when the ``webhook_token`` setting is set the URL must carry that
token and never the master ``api_key`` (which is then refused in the URL); headers accept
either.
"""

from __future__ import annotations

from bridge.verifiers.base import Secrets, SignedRequest, VerificationFailed, same


class ApiKey:
    name = "api_key"

    def verify(self, request: SignedRequest, secrets: Secrets) -> None:
        """Pass when a header carries the api_key (or the webhook token), or the URL carries
        the webhook token (or, when none is set, the api_key)."""
        headers, in_url = self._presented(request)
        if not headers and not in_url:
            raise VerificationFailed(
                "missing API key (send Authorization: Bearer, X-API-Key or ?token=)"
            )
        url_secret = secrets.token or secrets.secret
        # compare everything, no early exit
        matches = [same(secrets.secret, key) | same(secrets.token, key) for key in headers]
        matches += [same(url_secret, key) for key in in_url]
        if not any(matches):
            raise VerificationFailed("API key does not match")

    def delivery_id(self, request: SignedRequest, payload: object) -> str | None:
        """A generic ``Idempotency-Key`` header, if the sender sets one."""
        return request.header("Idempotency-Key") or None

    @staticmethod
    def _presented(request: SignedRequest) -> tuple[list[str], list[str]]:
        """Keys presented in headers, and in the URL."""
        scheme, _, token = request.header("Authorization").partition(" ")
        headers = [token.strip() if scheme.lower() == "bearer" else "", request.header("X-API-Key")]
        in_url = [(request.query.get(name) or "").strip() for name in URL_CREDENTIALS]
        return [k for k in headers if k], [k for k in in_url if k]


URL_CREDENTIALS = ("token", "api_key")
