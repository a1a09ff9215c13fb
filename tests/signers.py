"""Sign webhook deliveries the way each provider does, for end-to-end tests.

Uses the providers' own libraries where they exist (standardwebhooks, stripe, slack_sdk,
PyNaCl keys) and stdlib HMAC otherwise. ``sign(scheme, body, now)`` returns the headers and
query a real sender would attach; ``SETTINGS[scheme]`` are the endpoint settings that verify them.
"""

import base64
import hashlib
import hmac
import uuid
from datetime import UTC, datetime

import stripe
from nacl.signing import SigningKey
from slack_sdk.signature import SignatureVerifier
from standardwebhooks.webhooks import Webhook

SECRET = "whsec-test-secret-0123456789"
WH_SECRET = "whsec_" + base64.b64encode(b"standard-webhooks-test-key-32by").decode()
API_KEY = "hook-key-0001"
DISCORD = SigningKey.generate()

SECRETS = {
    "api_key": API_KEY,
    "standard_webhooks": WH_SECRET,
    "discord": DISCORD.verify_key.encode().hex(),
}
SCHEMES = (
    "api_key", "hmac_sha256", "github", "gitlab", "slack", "stripe", "standard_webhooks",
    "discord", "shopify", "telegram", "line", "meta",
)  # fmt: skip
TIMESTAMPED = ("slack", "stripe", "standard_webhooks", "discord")
# the header whose absence or garbage must fail each scheme
SIGNATURE_HEADER = {
    "api_key": "Authorization",
    "hmac_sha256": "X-Signature",
    "github": "X-Hub-Signature-256",
    "gitlab": "X-Gitlab-Token",
    "slack": "X-Slack-Signature",
    "stripe": "Stripe-Signature",
    "standard_webhooks": "webhook-signature",
    "discord": "X-Signature-Ed25519",
    "shopify": "X-Shopify-Hmac-Sha256",
    "telegram": "X-Telegram-Bot-Api-Secret-Token",
    "line": "X-Line-Signature",
    "meta": "X-Hub-Signature-256",
}


def settings(scheme, app_id, **extra):
    values = {
        "api_key": API_KEY,
        "app": {"app_id": app_id},
        "webhook_verification": scheme,
        "webhook_secret": SECRETS.get(scheme, SECRET) if scheme != "api_key" else "",
        "webhook_signature_header": "X-Signature",
    }
    return {**values, **extra}


def _hex(secret, data):
    return hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


def _b64(secret, data):
    return base64.b64encode(hmac.new(secret.encode(), data, hashlib.sha256).digest()).decode()


def sign(scheme, body, now, *, secret=None, delivery=None):
    """Headers (dict) for ``body`` as the provider would send them at time ``now``."""
    delivery = delivery or str(uuid.uuid4())
    secret = secret or SECRETS.get(scheme, SECRET)
    ts = int(now)
    if scheme == "api_key":
        return {"Authorization": f"Bearer {secret}", "Idempotency-Key": delivery}
    if scheme == "hmac_sha256":
        return {"X-Signature": f"sha256={_hex(secret, body)}", "Idempotency-Key": delivery}
    if scheme == "github":
        return {"X-Hub-Signature-256": f"sha256={_hex(secret, body)}", "X-GitHub-Delivery": delivery,
                "X-GitHub-Event": "issues"}  # fmt: skip
    if scheme == "gitlab":
        return {
            "X-Gitlab-Token": secret,
            "X-Gitlab-Event-UUID": delivery,
            "X-Gitlab-Event": "Push Hook",
        }
    if scheme == "slack":
        signature = SignatureVerifier(secret).generate_signature(timestamp=str(ts), body=body)
        return {"X-Slack-Signature": signature, "X-Slack-Request-Timestamp": str(ts)}
    if scheme == "stripe":
        return {
            "Stripe-Signature": stripe.WebhookSignature.generate_signature_header(
                body.decode(), secret, ts
            )
        }
    if scheme == "standard_webhooks":
        signature = Webhook(secret).sign(
            delivery, datetime.fromtimestamp(ts, tz=UTC), body.decode()
        )
        return {
            "webhook-id": delivery,
            "webhook-timestamp": str(ts),
            "webhook-signature": signature,
        }
    if scheme == "discord":
        key = DISCORD if secret == SECRETS["discord"] else SigningKey.generate()
        signature = key.sign(str(ts).encode() + body).signature.hex()
        return {"X-Signature-Ed25519": signature, "X-Signature-Timestamp": str(ts)}
    if scheme == "shopify":
        return {"X-Shopify-Hmac-Sha256": _b64(secret, body), "X-Shopify-Webhook-Id": delivery}
    if scheme == "telegram":
        return {"X-Telegram-Bot-Api-Secret-Token": secret}
    if scheme == "line":
        return {"X-Line-Signature": _b64(secret, body)}
    if scheme == "meta":
        return {"X-Hub-Signature-256": f"sha256={_hex(secret, body)}"}
    raise ValueError(scheme)
