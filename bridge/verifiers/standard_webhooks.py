"""``standard_webhooks``: the Standard Webhooks spec (also Svix, and GitLab signing tokens).

Headers ``webhook-id``, ``webhook-timestamp``, ``webhook-signature: v1,<b64> [v1,<b64> …]``
(``svix-id``/``svix-timestamp``/``svix-signature`` are accepted too). The signature is the
base64 HMAC-SHA256 of ``"{id}.{timestamp}.{body}"`` keyed by the base64-decoded secret
(with or without its ``whsec_`` prefix); the timestamp must be within 300 s of now.
Checked by the ``standardwebhooks`` library. Delivery id: ``webhook-id``.
"""

from __future__ import annotations

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from bridge.verifiers.base import (
    Secrets,
    SignedRequest,
    VerificationFailed,
    check_window,
    current_time,
    parse_timestamp,
)

FIELDS = ("id", "timestamp", "signature")


def _headers(request: SignedRequest) -> dict[str, str]:
    """``webhook-*`` values, each falling back to its ``svix-*`` twin."""
    return {
        f"webhook-{field}": request.header(f"webhook-{field}") or request.header(f"svix-{field}")
        for field in FIELDS
    }


class StandardWebhooks:
    name = "standard_webhooks"

    def verify(self, request: SignedRequest, secrets: Secrets) -> None:
        """Check the window against ``request.now``, then let the library check the rest."""
        headers = _headers(request)
        for header, value in headers.items():
            if not value:
                raise VerificationFailed(f"missing {header} header")
        timestamp = parse_timestamp(headers["webhook-timestamp"], "webhook-timestamp header")
        check_window(timestamp, current_time(request))
        try:
            webhook = Webhook(secrets.secret)
        except Exception:  # noqa: BLE001 - binascii.Error and friends
            raise VerificationFailed(
                "webhook_secret is not a Standard Webhooks secret (base64, optional whsec_)"
            ) from None
        try:
            webhook.verify(request.body, headers, json_parse=False)
        except WebhookVerificationError as exc:
            if "timestamp" in str(exc).lower():  # the library's own clock check
                raise VerificationFailed("timestamp outside the 300 s window") from None
            raise VerificationFailed("signature does not match") from None
        except Exception:  # noqa: BLE001 - ValueError, binascii.Error, UnicodeDecodeError
            raise VerificationFailed("malformed webhook-signature header or body") from None

    def delivery_id(self, request: SignedRequest, payload: object) -> str | None:
        return request.header("webhook-id") or request.header("svix-id") or None
