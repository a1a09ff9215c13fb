"""Webhook signature schemes, selected by the ``webhook_verification`` setting (SPEC §6).

=====================  =====================================================================
scheme                 headers checked (delivery id)
=====================  =====================================================================
``api_key``            ``Authorization: Bearer``, ``X-API-Key``, or ``?token=``/``?api_key=``
                       (the ``webhook_token`` when set) (``Idempotency-Key``)
``hmac_sha256``        ``webhook_signature_header``: hex HMAC, optional ``sha256=``
                       (``Idempotency-Key``)
``github``             ``X-Hub-Signature-256: sha256=<hex>`` (``X-GitHub-Delivery``)
``gitlab``             ``X-Gitlab-Token`` (``X-Gitlab-Event-UUID``, else ``Idempotency-Key``)
``slack``              ``X-Slack-Signature: v0=<hex>``, ``X-Slack-Request-Timestamp``
                       (body ``event_id``)
``stripe``             ``Stripe-Signature: t=…,v1=…`` (body ``id``)
``standard_webhooks``  ``webhook-id``, ``webhook-timestamp``, ``webhook-signature``, or the
                       ``svix-*`` names (``webhook-id``)
``discord``            ``X-Signature-Ed25519``, ``X-Signature-Timestamp`` (body ``id``)
``shopify``            ``X-Shopify-Hmac-Sha256`` base64 (``X-Shopify-Webhook-Id``)
``telegram``           ``X-Telegram-Bot-Api-Secret-Token`` (body ``update_id``)
``line``               ``X-Line-Signature`` base64 (body ``events[].webhookEventId``)
``meta``               ``X-Hub-Signature-256: sha256=<hex>`` (none)
=====================  =====================================================================

Slack, Stripe, Standard Webhooks and Discord sign a timestamp, which must be within 300 s
of ``request.now``. :func:`verify` turns every failure into :class:`VerificationFailed`.
"""

from __future__ import annotations

from bridge.verifiers.api_key import ApiKey
from bridge.verifiers.base import Scheme, Secrets, SignedRequest, VerificationFailed
from bridge.verifiers.discord import Discord
from bridge.verifiers.github import GitHub
from bridge.verifiers.gitlab import GitLab
from bridge.verifiers.hmac_sha256 import HmacSha256
from bridge.verifiers.line import Line
from bridge.verifiers.meta import Meta
from bridge.verifiers.shopify import Shopify
from bridge.verifiers.slack import Slack
from bridge.verifiers.standard_webhooks import StandardWebhooks
from bridge.verifiers.stripe import Stripe
from bridge.verifiers.telegram import Telegram

__all__ = [
    "SCHEMES",
    "Scheme",
    "Secrets",
    "SignedRequest",
    "VerificationFailed",
    "delivery_id",
    "verify",
]

SCHEMES: dict[str, Scheme] = {
    scheme.name: scheme
    for scheme in (
        ApiKey(),
        HmacSha256(),
        GitHub(),
        GitLab(),
        Slack(),
        Stripe(),
        StandardWebhooks(),
        Discord(),
        Shopify(),
        Telegram(),
        Line(),
        Meta(),
    )
}


def verify(name: str, request: SignedRequest, secrets: Secrets) -> None:
    """Return if ``request`` is authentic under scheme ``name``; else raise
    :class:`VerificationFailed` (whatever went wrong inside the scheme)."""
    scheme = SCHEMES.get(name)
    if scheme is None:
        raise VerificationFailed(f"unknown webhook_verification {name[:40]!r}")
    if not secrets.secret.strip():
        setting = "api_key" if name == "api_key" else "webhook_secret"
        raise VerificationFailed(f"no {setting} configured")
    try:
        scheme.verify(request, secrets)
    except VerificationFailed:
        raise
    except Exception:  # noqa: BLE001 - any failure is a 401, never a 500
        raise VerificationFailed("malformed signature headers") from None


def delivery_id(name: str, request: SignedRequest, payload: object) -> str | None:
    """The provider's delivery id for idempotency, or None; never raises."""
    try:
        scheme = SCHEMES.get(name)
        found = scheme.delivery_id(request, payload) if scheme is not None else None
    except Exception:  # noqa: BLE001 - idempotency is best effort
        return None
    return found if isinstance(found, str) and found else None
