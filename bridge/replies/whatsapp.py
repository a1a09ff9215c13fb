"""WhatsApp Cloud API: ``POST /{version}/{phone_number_id}/messages`` (text) to the sender.

Runs on ``messages`` changes carrying a ``text`` message; status updates (sent, delivered,
read) and other message types never run. The first part quotes the user's message
(``context.message_id``). ``APP_BRIDGE_WHATSAPP_API`` may end in a version (``…/v24.0``);
otherwise :data:`GRAPH_VERSION` is appended.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from bridge.replies.base import (
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

LIMIT = 4096
GRAPH_VERSION = "v24.0"
_VERSIONED = re.compile(r"/v[0-9]+\.[0-9]+$")
_NUMBER = re.compile(r"[0-9]{1,32}")
WHAT = "a WhatsApp Cloud API access token (system user token)"


def _values(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    found = []
    for entry in body.get("entry") or []:
        for change in dig(entry, "changes") or []:
            value = dig(change, "value")
            if isinstance(value, Mapping) and dig(change, "field") in (None, "messages"):
                found.append(value)
    return found


def _first_text(body: Mapping[str, Any]) -> tuple[Mapping[str, Any], Mapping[str, Any]] | None:
    """The first text message and the change value carrying it."""
    for value in _values(body):
        for msg in value.get("messages") or []:
            if (
                isinstance(msg, Mapping)
                and msg.get("type") == "text"
                and text(dig(msg, "text", "body")).strip()
            ):
                return value, msg
    return None


class WhatsApp(PlatformChannel):
    name = "whatsapp"
    setting_help = WHAT

    def skip(self, document: Mapping[str, Any]) -> str | None:
        body = body_of(document)
        values = _values(body)
        if not values:
            return "not a WhatsApp Cloud API notification"
        if _first_text(body) is None:
            if any(value.get("statuses") for value in values):
                return "status update"
            return "no text message"
        if self.target(document) is None:
            return "message without phone_number_id or sender"
        return None

    def preset(self, document: Mapping[str, Any]) -> Preset | None:
        found = _first_text(body_of(document))
        if found is None:
            return None
        target = self.target(document)
        key = f"{target.fields['phone_number_id']}:{target.fields['to']}" if target else None
        return Preset(text(dig(found[1], "text", "body")).strip(), key, {})

    def target(self, document: Mapping[str, Any]) -> Target | None:
        found = _first_text(body_of(document))
        if found is None:
            return None
        value, msg = found
        phone = ident(dig(value, "metadata", "phone_number_id"))
        sender = ident(msg.get("from"))
        if not _NUMBER.fullmatch(phone) or not _NUMBER.fullmatch(sender):
            return None
        fields = {"phone_number_id": phone, "to": sender, "message_id": ident(msg.get("id"))}
        return Target(self.name, fields)

    def send(self, target: Target, outcome: Outcome, credentials: Credentials) -> None:
        token = self.token(credentials)
        phone = ident(target.fields.get("phone_number_id"))
        to = ident(target.fields.get("to"))
        if not _NUMBER.fullmatch(phone) or not _NUMBER.fullmatch(to):
            raise ReplyFailed("whatsapp reply target has no phone number id or recipient")
        api = self.http.api(self.name)
        version = "" if _VERSIONED.search(api.base) else f"/{GRAPH_VERSION}"
        path = f"{version}/{phone}/messages"
        headers = {"authorization": f"Bearer {token}"}
        quoted = ident(target.fields.get("message_id"))
        for index, part in enumerate(split(message(outcome), LIMIT)):
            payload: dict[str, Any] = {
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": to,
                "type": "text",
                "text": {"preview_url": False, "body": part},
            }
            if index == 0 and quoted:
                payload["context"] = {"message_id": quoted}
            self.http.call(api, "POST", path, payload, headers)
