"""Callback: ``POST reply_url`` with the run's result, signed per Standard Webhooks.

Body ``{"id", "status", "answer", "outputs", "conversation_id", "error"}`` (``status`` is
``succeeded``, ``failed`` or ``paused``), headers ``webhook-id`` (the delivery id, the same on
every retry, so receivers can deduplicate), ``webhook-timestamp`` and ``webhook-signature``
made with ``reply_token`` (``whsec_…``). Sent by the Send webhook tool's client
(:func:`bridge.transport.outbound.send_signed_body`): timeouts, bounded retries and the SSRF guard —
``reply_url`` is an endpoint setting, so it is not trusted: public addresses only, unless the
operator lists the host in ``APP_BRIDGE_REPLY_ALLOWED_HOSTS`` (then only listed hosts).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from bridge.replies.base import (
    Credentials,
    Outcome,
    Preset,
    ReplyFailed,
    Target,
)
from bridge.replies.http import PlatformChannel, refusal
from bridge.transport import outbound

_WEBHOOK_ID = re.compile(r"[\x21-\x7e]{1,256}")


class Callback(PlatformChannel):
    name = "callback"
    setting_help = "a Standard Webhooks signing secret (whsec_ + base64 of 24-64 random bytes)"
    json_acks = True

    def check(self, credentials: Credentials) -> None:
        try:
            outbound.check_url(credentials.url, self.http.reply_url_hosts())
        except outbound.WebhookInputError as exc:
            raise ReplyFailed(f"reply_url: {refusal(exc)}") from None
        self.token(credentials)  # empty: say which setting
        try:
            outbound.validate_secret(credentials.token)
        except outbound.WebhookInputError as exc:
            raise ReplyFailed(f"reply_token: {exc}") from None

    def skip(self, document: Mapping[str, Any]) -> str | None:
        return None

    def preset(self, document: Mapping[str, Any]) -> Preset | None:
        return None  # any sender: the usual mapping applies

    def target(self, document: Mapping[str, Any]) -> Target | None:
        return Target(self.name, {})

    def send(self, target: Target, outcome: Outcome, credentials: Credentials) -> None:
        self.check(credentials)
        body = json.dumps(
            {
                "id": outcome.delivery_id,
                "status": outcome.status,
                "answer": outcome.answer,
                "outputs": dict(outcome.outputs) if outcome.outputs is not None else None,
                "conversation_id": outcome.conversation_id,
                "error": outcome.error,
            },
            ensure_ascii=False,
            separators=(",", ":"),
            default=str,
        )
        webhook_id = outcome.delivery_id
        if not _WEBHOOK_ID.fullmatch(webhook_id):
            webhook_id = "msg_" + hashlib.sha256(webhook_id.encode()).hexdigest()[:32]
        try:
            delivery = outbound.send_signed_body(
                credentials.url,
                body,
                credentials.token.strip(),
                webhook_id=webhook_id,
                timeout=self.http.timeout,
                max_attempts=self.http.max_attempts,
                backoff=self.http.backoff,
                allowed_hosts=self.http.reply_url_hosts(),
                sleep=self.http.sleep,
            )
        except outbound.WebhookInputError as exc:
            raise ReplyFailed(f"reply_url refused: {refusal(exc)}") from None
        if not delivery.ok:
            raise ReplyFailed(f"callback: {delivery.error}")
