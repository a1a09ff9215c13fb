"""Telegram: ``sendMessage`` to the chat, replying to the message (Bot API).

Runs on updates carrying a ``message`` with ``text`` from a person; edited messages, channel
posts, callback queries, messages without text and messages from bots never run. The first
part replies to the message (``reply_parameters``, sent even if that message is gone); the
answer is plain text (no ``parse_mode``: the app's Markdown would need escaping to survive).
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
    require_token,
    text,
)
from bridge.replies.http import PlatformChannel
from bridge.replies.text import split

LIMIT = 4096
_BOT_TOKEN = re.compile(r"[0-9]{1,20}:[A-Za-z0-9_-]{20,200}")
_CHAT = re.compile(r"-?[0-9]{1,20}|@[A-Za-z0-9_]{1,64}")
WHAT = "the Telegram bot token from @BotFather (123456:ABC…)"


def bot_token(credentials: Credentials) -> str:
    token = require_token(credentials, WHAT)
    if not _BOT_TOKEN.fullmatch(token):
        raise ReplyFailed(f"reply_token is not a Telegram bot token: set it to {WHAT}")
    return token


def query(msg: Mapping[str, Any]) -> str:
    """The message's text; a leading ``/command@bot`` (a group command) is dropped when text
    follows it — ``/start`` alone stays."""
    raw = text(msg.get("text")).strip()
    first = dig(msg, "entities", 0)
    if dig(first, "type") == "bot_command" and dig(first, "offset") == 0:
        length = dig(first, "length")
        rest = raw[length:].strip() if isinstance(length, int) and "@" in raw[:length] else ""
        return rest or raw
    return raw


class Telegram(PlatformChannel):
    name = "telegram"
    setting_help = WHAT

    def token(self, credentials: Credentials) -> str:
        return bot_token(credentials)

    def skip(self, document: Mapping[str, Any]) -> str | None:
        body = body_of(document)
        msg = body.get("message")
        if not isinstance(msg, Mapping):
            kinds = sorted(k for k in body if k != "update_id")[:3]
            return f"update without a new message ({', '.join(kinds) or 'empty'})"
        if dig(msg, "from", "is_bot") is True:
            return "message from a bot"
        if not text(msg.get("text")).strip():
            return "message without text"
        if self.target(document) is None:
            return "message without chat or message_id"
        return None

    def preset(self, document: Mapping[str, Any]) -> Preset | None:
        msg = body_of(document).get("message")
        if not isinstance(msg, Mapping):
            return None
        chat = ident(dig(msg, "chat", "id"))
        topic = ident(msg.get("message_thread_id")) if msg.get("is_topic_message") else ""
        key = (f"{chat}:{topic}" if topic else chat) or None
        return Preset(query(msg), key, {})

    def target(self, document: Mapping[str, Any]) -> Target | None:
        msg = body_of(document).get("message")
        chat = ident(dig(msg, "chat", "id"))
        message_id = dig(msg, "message_id")
        if not _CHAT.fullmatch(chat) or not isinstance(message_id, int):
            return None
        fields: dict[str, Any] = {"chat_id": chat, "message_id": message_id}
        thread = dig(msg, "message_thread_id")
        if dig(msg, "is_topic_message") and isinstance(thread, int):
            fields["message_thread_id"] = thread
        return Target(self.name, fields)

    def send(self, target: Target, outcome: Outcome, credentials: Credentials) -> None:
        token = self.token(credentials)
        chat = ident(target.fields.get("chat_id"))
        if not _CHAT.fullmatch(chat):
            raise ReplyFailed("telegram reply target has no chat id")
        api = self.http.api(self.name)
        chat_id: int | str = int(chat) if chat.lstrip("-").isdigit() else chat
        for index, part in enumerate(split(message(outcome), LIMIT)):
            payload: dict[str, Any] = {"chat_id": chat_id, "text": part}
            if isinstance(target.fields.get("message_thread_id"), int):
                payload["message_thread_id"] = target.fields["message_thread_id"]
            if index == 0 and isinstance(target.fields.get("message_id"), int):
                payload["reply_parameters"] = {
                    "message_id": target.fields["message_id"],
                    "allow_sending_without_reply": True,
                }
            reply = self.http.call(api, "POST", f"/bot{token}/sendMessage", payload)
            if not reply.ok():
                raise ReplyFailed("telegram API: not ok")
