"""Discord interactions: the deferred response is edited, further parts are follow-ups.

The webhook acks an application command with ``{"type": 5}`` (deferred channel message, the
user sees "thinking…"); the reply then edits that response
(``PATCH /webhooks/{application_id}/{token}/messages/@original``) and sends any further part as
a follow-up (``POST /webhooks/{application_id}/{token}``). The interaction token authorises
both (valid 15 minutes), so no ``reply_token`` is needed. Mentions in the answer never ping
(``allowed_mentions: {"parse": []}``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from bridge.replies.base import (
    Ack,
    Credentials,
    Outcome,
    Preset,
    ReplyFailed,
    Target,
    body_of,
    dig,
    ident,
    message,
    text,
)
from bridge.replies.http import PlatformChannel
from bridge.replies.text import split

LIMIT = 2000
APPLICATION_COMMAND = 2
QUERY_OPTIONS = ("query", "prompt", "text", "question", "message")
SUBCOMMAND_TYPES = (1, 2)
NOT_HANDLED = "This interaction is not handled by the app."
_SNOWFLAKE = re.compile(r"[0-9]{1,20}")
_TOKEN = re.compile(r"[A-Za-z0-9_.-]{1,500}")
_NO_MENTIONS: dict[str, list[str]] = {"parse": []}


def options(data: Any) -> tuple[dict[str, Any], list[str]]:
    """Command options flattened to ``{name: value}``, and the subcommand path."""
    values: dict[str, Any] = {}
    path: list[str] = []
    current = data.get("options") if isinstance(data, Mapping) else None
    for _ in range(3):  # command → group → subcommand: at most two levels down
        if not isinstance(current, list):
            break
        nested = None
        for option in current:
            if not isinstance(option, Mapping) or not text(option.get("name")):
                continue
            if option.get("type") in SUBCOMMAND_TYPES:
                path.append(option["name"])
                nested = option.get("options")
            elif "value" in option:
                values[option["name"]] = option["value"]
        current = nested
    return values, path


class Discord(PlatformChannel):
    name = "discord"

    def skip(self, document: Mapping[str, Any]) -> str | None:
        body = body_of(document)
        if "event" in body:
            return "Discord webhook event (only interactions are answered)"
        kind = body.get("type")
        if kind == 1:
            return "PING"
        if kind != APPLICATION_COMMAND:
            return f"interaction type {kind} is not an application command"
        if self.target(document) is None:
            return "interaction without application_id or token"
        return None

    def preset(self, document: Mapping[str, Any]) -> Preset | None:
        body = body_of(document)
        data = body.get("data")
        if not isinstance(data, Mapping):
            return None
        values, path = options(data)
        inputs: dict[str, Any] = dict(values)
        if path:
            inputs.setdefault("subcommand", " ".join(path))
        query = next((text(values[k]) for k in QUERY_OPTIONS if text(values.get(k))), "")
        if not query:
            query = " ".join(str(v) for v in values.values() if not isinstance(v, bool)).strip()
        if not query:  # a message context-menu command: the message it was used on
            target_id = ident(data.get("target_id"))
            query = text(dig(data, "resolved", "messages", target_id, "content")).strip()
        if not query:
            query = "/" + " ".join([text(data.get("name")), *path]).strip()
        channel = ident(body.get("channel_id")) or ident(dig(body, "channel", "id"))
        user = ident(dig(body, "member", "user", "id")) or ident(dig(body, "user", "id"))
        key = f"{channel}:{user}" if channel and user else None
        return Preset(query, key, inputs)

    def target(self, document: Mapping[str, Any]) -> Target | None:
        body = body_of(document)
        application = ident(body.get("application_id"))
        token = ident(body.get("token"))
        if not _SNOWFLAKE.fullmatch(application) or not _TOKEN.fullmatch(token):
            return None
        return Target(self.name, {"application_id": application, "token": token})

    def ack(self, delivery_id: str) -> Ack:
        return Ack(200, b'{"type":5}', "application/json")

    def ignored(self, reason: str) -> Ack:
        body = {"type": 4, "data": {"content": NOT_HANDLED, "flags": 64}}  # ephemeral
        return Ack(200, json.dumps(body, separators=(",", ":")).encode(), "application/json")

    def send(self, target: Target, outcome: Outcome, credentials: Credentials) -> None:
        application = ident(target.fields.get("application_id"))
        token = ident(target.fields.get("token"))
        if not _SNOWFLAKE.fullmatch(application) or not _TOKEN.fullmatch(token):
            raise ReplyFailed("discord reply target has no valid application id or token")
        api = self.http.api(self.name)
        hook = f"/webhooks/{application}/{token}"
        for index, part in enumerate(split(message(outcome), LIMIT)):
            payload = {"content": part, "allowed_mentions": _NO_MENTIONS}
            if index == 0:
                self.http.call(api, "PATCH", f"{hook}/messages/@original", payload)
            else:
                self.http.call(api, "POST", f"{hook}?wait=true", payload)
