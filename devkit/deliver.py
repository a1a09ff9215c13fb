"""``./dev deliver <platform> "text"``: a signed test delivery to the local runner, and its reply.

Builds the delivery the platform would send for a user's message ``text`` (a Slack DM event, a
Discord ``/ask query:`` command, a Telegram message, a LINE text event, a WhatsApp text
message, a GitHub issue comment, a GitLab note), signs it as the platform signs it with the
demo endpoint's ``webhook_secret``, POSTs it to ``/e/<hook_id>/webhook`` of the running
``./dev run``, prints the ack, then waits for the reply the fake platform API received and
prints it. The demo endpoint of a platform is the one in ``devkit/demo.yaml`` whose
``webhook_reply`` is that platform (hook ids ``replyslack000001``, ``replydiscord0001``, …).

``payload(platform, text)`` and ``sign(scheme, body, secret, now)`` are importable for tests.
The Discord demo endpoint's public key is :data:`DISCORD_PUBLIC_KEY`; its private half is
derived from a published seed, so it is good for the demo and nothing else.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import re
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

import yaml
from nacl.signing import SigningKey
from standardwebhooks.webhooks import Webhook

from devkit.fakes import DEFAULT_PORT, PREFIXES, message_text

DEMO_CONFIG = Path(__file__).with_name("demo.yaml")
PLATFORMS = ("slack", "discord", "telegram", "line", "whatsapp", "github", "gitlab")
DISCORD_KEY = SigningKey(
    hashlib.sha256(b"app-bridge demo discord signing key (public, for ./dev deliver only)").digest()
)
DISCORD_PUBLIC_KEY = DISCORD_KEY.verify_key.encode().hex()
# ids the demo deliveries use (the fake platforms accept anything)
SLACK_BOT_USER = "U0DEMOBOT"
DISCORD_APPLICATION = "1100000000000000001"
WHATSAPP_PHONE_NUMBER_ID = "100000000000001"
_SECRET_PATH = re.compile(r"/bot[^/]+/|/webhooks/([0-9]+)/[^/?]+")


def payload(  # noqa: PLR0911 - one shape per platform
    platform: str, text: str, now: float | None = None
) -> tuple[dict[str, Any], dict]:
    """The platform's delivery body for a user's message ``text``, and its extra headers."""
    now = time.time() if now is None else now
    n = int(now * 1000)
    unique = uuid.uuid4().hex
    if platform == "slack":
        ts = f"{int(now)}.{n % 1_000_000:06d}"
        event = {"type": "message", "channel_type": "im", "channel": "D0DEMO", "user": "U0DEMOUSER",
                 "text": text, "ts": ts, "event_ts": ts}  # fmt: skip
        return {
            "token": "legacy-verification-token",
            "team_id": "T0DEMO",
            "api_app_id": "A0DEMO",
            "event": event,
            "type": "event_callback",
            "event_id": f"Ev{unique[:10].upper()}",
            "event_time": int(now),
            "authorizations": [{"team_id": "T0DEMO", "user_id": SLACK_BOT_USER, "is_bot": True}],
        }, {}
    if platform == "discord":
        return {
            "type": 2,
            "id": str(1_200_000_000_000_000_000 + n % 1_000_000_000),
            "application_id": DISCORD_APPLICATION,
            "token": f"demo-interaction-token.{unique}",
            "channel_id": "1300000000000000001",
            "guild_id": "1400000000000000001",
            "member": {"user": {"id": "1500000000000000001", "username": "demo"}},
            "data": {"id": "1600000000000000001", "name": "ask", "type": 1,
                     "options": [{"name": "query", "type": 3, "value": text}]},
            "version": 1,
        }, {}  # fmt: skip
    if platform == "telegram":
        return {
            "update_id": n % 1_000_000_000,
            "message": {"message_id": n % 1_000_000, "date": int(now), "text": text,
                        "from": {"id": 4242, "is_bot": False, "first_name": "Demo"},
                        "chat": {"id": 4242, "type": "private", "first_name": "Demo"}},
        }, {}  # fmt: skip
    if platform == "line":
        return {
            "destination": "U" + "0" * 32,
            "events": [{
                "type": "message", "mode": "active", "timestamp": n,
                "source": {"type": "user", "userId": "U" + "d" * 32},
                "webhookEventId": f"01DEMO{unique[:20].upper()}",
                "deliveryContext": {"isRedelivery": False},
                "replyToken": unique,
                "message": {"id": str(n), "type": "text", "quoteToken": unique, "text": text},
            }],
        }, {}  # fmt: skip
    if platform == "whatsapp":
        value = {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550000000",
                         "phone_number_id": WHATSAPP_PHONE_NUMBER_ID},
            "contacts": [{"profile": {"name": "Demo"}, "wa_id": "15551234567"}],
            "messages": [{"from": "15551234567", "id": f"wamid.{unique}",
                          "timestamp": str(int(now)), "type": "text", "text": {"body": text}}],
        }  # fmt: skip
        return {
            "object": "whatsapp_business_account",
            "entry": [
                {"id": "100000000000002", "changes": [{"field": "messages", "value": value}]}
            ],
        }, {}
    if platform == "github":
        user = {"login": "octocat", "id": 1, "type": "User"}
        return {
            "action": "created",
            "issue": {"number": 1, "title": "Demo issue", "body": "", "user": user},
            "comment": {"id": n % 1_000_000_000, "body": text, "user": user},
            "repository": {"id": 1, "full_name": "demo/app-bridge", "name": "app-bridge"},
            "sender": user,
        }, {"X-GitHub-Event": "issue_comment", "X-GitHub-Delivery": str(uuid.uuid4())}
    if platform == "gitlab":
        return {
            "object_kind": "note",
            "event_type": "note",
            "user": {"id": 1, "username": "demo", "name": "Demo"},
            "project": {"id": 1, "path_with_namespace": "demo/app-bridge"},
            "object_attributes": {"id": n % 1_000_000_000, "note": text, "noteable_type": "Issue",
                                  "action": "create", "system": False},
            "issue": {"id": 11, "iid": 1, "title": "Demo issue"},
        }, {"X-Gitlab-Event": "Note Hook", "X-Gitlab-Event-UUID": str(uuid.uuid4())}  # fmt: skip
    raise ValueError(f"unknown platform {platform!r}; one of {', '.join(PLATFORMS)}")


def sign(scheme: str, body: bytes, secret: str, now: float) -> dict[str, str]:  # noqa: PLR0911
    """The signature headers ``scheme`` puts on ``body`` (the verifier's side of SPEC §6)."""
    ts = str(int(now))
    digest = hmac.new(secret.encode(), body, hashlib.sha256)
    if scheme == "slack":
        mac = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256)
        return {"X-Slack-Signature": f"v0={mac.hexdigest()}", "X-Slack-Request-Timestamp": ts}
    if scheme == "discord":
        key = DISCORD_KEY if secret == DISCORD_PUBLIC_KEY else None
        if key is None:
            raise SystemExit("the Discord endpoint's webhook_secret is not the demo public key")
        signature = key.sign(ts.encode() + body).signature.hex()
        return {"X-Signature-Ed25519": signature, "X-Signature-Timestamp": ts}
    if scheme == "telegram":
        return {"X-Telegram-Bot-Api-Secret-Token": secret}
    if scheme == "line":
        return {"X-Line-Signature": base64.b64encode(digest.digest()).decode()}
    if scheme in ("meta", "github"):
        return {"X-Hub-Signature-256": f"sha256={digest.hexdigest()}"}
    if scheme == "gitlab":
        return {"X-Gitlab-Token": secret}
    if scheme == "standard_webhooks":
        delivery = f"msg_{uuid.uuid4().hex}"
        stamp = Webhook(secret).sign(delivery, _utc(now), body.decode())
        return {"webhook-id": delivery, "webhook-timestamp": ts, "webhook-signature": stamp}
    if scheme == "api_key":
        return {"Authorization": f"Bearer {secret}", "Idempotency-Key": str(uuid.uuid4())}
    raise SystemExit(f"./dev deliver cannot sign {scheme!r} deliveries")


def _utc(now: float) -> datetime:
    return datetime.fromtimestamp(now, tz=UTC)


def demo_endpoint(platform: str, config: Path = DEMO_CONFIG) -> dict[str, Any]:
    """The demo endpoint whose ``webhook_reply`` is ``platform``."""
    doc = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    for endpoint in doc.get("endpoints") or []:
        if (endpoint.get("settings") or {}).get("webhook_reply") == platform:
            return endpoint
    raise SystemExit(
        f"{config} has no endpoint with webhook_reply: {platform} "
        f"(expected hook id like demo{platform}…)"
    )


def redact(path: str) -> str:
    """A platform path without the token it may carry (Telegram bot, Discord interaction)."""
    return _SECRET_PATH.sub(
        lambda m: f"/webhooks/{m.group(1)}/***" if m.group(1) else "/bot***/", path
    )


def _http(method: str, url: str, body: bytes | None = None, headers: dict | None = None):
    request = Request(url, data=body, method=method, headers=headers or {})
    try:
        with urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except HTTPError as error:
        return error.code, dict(error.headers), error.read()


def _recorded(fakes: str, after: int) -> tuple[list[dict[str, Any]], int]:
    _, _, raw = _http("GET", f"{fakes}/_fake/calls?after={after}")
    data = json.loads(raw)
    return data["calls"], data["next"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="./dev deliver", description="Send a signed test delivery to ./dev run."
    )
    parser.add_argument("platform", choices=PLATFORMS)
    parser.add_argument("text")
    parser.add_argument("--url", default="http://127.0.0.1:5002", help="the local runner")
    parser.add_argument("--fakes", default=f"http://127.0.0.1:{DEFAULT_PORT}",
                        help="the fake platform APIs the runner serves")  # fmt: skip
    parser.add_argument("--config", type=Path, default=DEMO_CONFIG)
    parser.add_argument("--wait", type=float, default=30.0, help="seconds to wait for the reply")
    args = parser.parse_args(argv)

    endpoint = demo_endpoint(args.platform, args.config)
    settings = endpoint.get("settings") or {}
    scheme = settings.get("webhook_verification") or "api_key"
    secret = settings.get("api_key" if scheme == "api_key" else "webhook_secret") or ""
    now = time.time()
    document, extra = payload(args.platform, args.text, now)
    body = json.dumps(document, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", **extra, **sign(scheme, body, secret, now)}
    try:
        _, after = _recorded(args.fakes, 0)
    except (URLError, OSError, ValueError, KeyError):
        print(f"no fake platform APIs at {args.fakes}: is ./dev run running?", file=sys.stderr)
        return 1
    url = f"{args.url}/e/{endpoint['hook_id']}/webhook"
    started = time.monotonic()
    try:
        status, response_headers, answer = _http("POST", url, body, headers)
    except (URLError, OSError) as exc:
        print(f"could not reach the local runner at {args.url} ({exc.__class__.__name__})")
        return 1
    took = (time.monotonic() - started) * 1000
    print(f"→ {args.platform} delivery to /e/{endpoint['hook_id']}/webhook")
    print(f"← ack {status} in {took:.0f} ms: {answer.decode('utf-8', 'replace') or '(empty body)'}")
    if response_headers.get("Idempotent-Replay"):
        print("  (Idempotent-Replay: true)")
    prefix = PREFIXES[args.platform]
    deadline = time.monotonic() + args.wait
    seen: list[dict[str, Any]] = []
    quiet_since = None
    while time.monotonic() < deadline:
        calls, after = _recorded(args.fakes, after)
        mine = [c for c in calls if c["platform"] == args.platform]
        for call in mine:
            took = (time.monotonic() - started) * 1000
            print(f"← reply {call['method']} {prefix}{redact(call['path'])} → {call['status']} "
                  f"({took:.0f} ms after the delivery)")  # fmt: skip
            print("  " + message_text(args.platform, call["json"]).replace("\n", "\n  "))
        seen += mine
        if seen and not mine:  # a reply arrived: wait briefly for further parts
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since > 1.0:
                return 0
        time.sleep(0.2)
    if not seen:
        print(f"no reply reached the fake {args.platform} API within {args.wait:g} s")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
