"""LINE: the reply API with the event's ``replyToken`` while it is valid, else the push API.

Runs on ``message`` events of type ``text`` in ``active`` mode. A delivery may carry several
events: the query is the text of every text message from the first one's source (user, group
or room), the reply goes to that source. Reply tokens are single use and expire soon after
the event (about 30 s in practice, "within one minute" by LINE's documentation), so the reply
API is used only within :data:`REPLY_WINDOW` seconds of the event's ``timestamp`` and, if LINE
refuses the token (HTTP 400), the same messages are pushed instead. At most 5 messages of 5000
characters go in one call; further batches are pushed. Pushes carry ``X-Line-Retry-Key`` (the
same on every retry), so a retried push is never shown twice (LINE answers 409 to a repeat of
an accepted key: that counts as delivered).
"""

from __future__ import annotations

import re
import uuid
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
from bridge.replies.http import PlatformChannel, PlatformRefused
from bridge.replies.text import split

LIMIT = 5000
PER_CALL = 5
REPLY_WINDOW = 25.0  # seconds after the event in which the reply token is used
_ID = re.compile(r"[A-Za-z0-9]{1,100}")
_REPLY_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,200}")
_RETRY_NAMESPACE = uuid.UUID("6f1c2f44-96b1-4c3e-a8f8-6c1d7f0e5a21")
WHAT = "the LINE channel access token (long-lived)"


def source_id(source: Any) -> str:
    """The id a push goes to: the group, else the room, else the user."""
    for key in ("groupId", "roomId", "userId"):
        value = ident(dig(source, key))
        if value:
            return value
    return ""


def without_self_mentions(msg: Mapping[str, Any]) -> str:
    """A text message's text without the mentions of this bot (``mentionees[].isSelf``;
    ``index``/``length`` count UTF-16 units)."""
    raw = text(msg.get("text"))
    spans = [
        (m["index"], m["length"])
        for m in dig(msg, "mention", "mentionees") or []
        if isinstance(m, Mapping)
        and m.get("isSelf") is True
        and isinstance(m.get("index"), int)
        and isinstance(m.get("length"), int)
    ]
    if not spans:
        return raw.strip()
    units = raw.encode("utf-16-le", "surrogatepass")
    for index, length in sorted(spans, reverse=True):
        units = units[: 2 * index] + units[2 * (index + length) :]
    return re.sub(r"\s{2,}", " ", units.decode("utf-16-le", "surrogatepass")).strip()


def _text_events(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    events = body.get("events")
    return [
        event
        for event in (events if isinstance(events, list) else [])
        if isinstance(event, Mapping)
        and event.get("type") == "message"
        and dig(event, "message", "type") == "text"
        and event.get("mode", "active") == "active"
        and source_id(event.get("source"))
    ]


class Line(PlatformChannel):
    name = "line"
    setting_help = WHAT

    def skip(self, document: Mapping[str, Any]) -> str | None:
        body = body_of(document)
        if not isinstance(body.get("events"), list):
            return "not a LINE webhook (no events)"
        if not _text_events(body):
            return "no text message event"
        return None

    def preset(self, document: Mapping[str, Any]) -> Preset | None:
        events = _text_events(body_of(document))
        if not events:
            return None
        source = events[0].get("source")
        who = source_id(source)
        texts = [
            without_self_mentions(event.get("message") or {})
            for event in events
            if source_id(event.get("source")) == who
        ]
        return Preset("\n".join(t for t in texts if t), f"{dig(source, 'type')}:{who}", {})

    def target(self, document: Mapping[str, Any]) -> Target | None:
        events = _text_events(body_of(document))
        if not events:
            return None
        event = events[0]
        who = source_id(event.get("source"))
        if not _ID.fullmatch(who):
            return None
        stamp = event.get("timestamp")
        received = stamp / 1000.0 if isinstance(stamp, int | float) else 0.0
        token = ident(event.get("replyToken"))
        return Target(self.name, {"reply_token": token, "to": who, "received_at": received})

    def send(self, target: Target, outcome: Outcome, credentials: Credentials) -> None:
        token = self.token(credentials)
        to = ident(target.fields.get("to"))
        if not _ID.fullmatch(to):
            raise ReplyFailed("line reply target has no source id")
        parts = split(message(outcome), LIMIT)
        batches = [parts[i : i + PER_CALL] for i in range(0, len(parts), PER_CALL)]
        api = self.http.api(self.name)
        headers = {"authorization": f"Bearer {token}"}
        for index, batch in enumerate(batches):
            messages = [{"type": "text", "text": part} for part in batch]
            if index == 0 and self._reply_valid(target):
                payload = {"replyToken": target.fields["reply_token"], "messages": messages}
                try:
                    self.http.call(api, "POST", "/v2/bot/message/reply", payload, headers)
                    continue
                except PlatformRefused as refused:
                    if refused.status != 400:  # 400: the token expired or was used: push
                        raise
            key = uuid.uuid5(_RETRY_NAMESPACE, f"{outcome.delivery_id}\x00{to}\x00{index}")
            self.http.call(
                api,
                "POST",
                "/v2/bot/message/push",
                {"to": to, "messages": messages},
                {**headers, "x-line-retry-key": str(key)},
                also_ok=frozenset({409}),
            )

    def _reply_valid(self, target: Target) -> bool:
        token = ident(target.fields.get("reply_token"))
        received = target.fields.get("received_at")
        if not _REPLY_TOKEN.fullmatch(token) or not isinstance(received, int | float):
            return False
        return 0 <= self.http.clock() - received < REPLY_WINDOW
