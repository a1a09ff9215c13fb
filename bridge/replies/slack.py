"""Slack: ``chat.postMessage`` in the event's thread, Markdown as mrkdwn (SPEC §6.1).

Runs on Events API ``event_callback`` deliveries whose event is a ``message`` (no subtype, or
the user-authored ``thread_broadcast`` / ``file_share``) or an ``app_mention``. Never runs on
messages from bots (``bot_id``, ``bot_profile``, ``subtype: bot_message``) or from this app
(the event's ``user`` is one of ``authorizations[].user_id``, or its ``app_id`` is the
delivery's ``api_app_id``), edits, deletions and other subtypes, other event types, or
``url_verification`` — so the bridge cannot answer itself in a loop. A ``message`` event in a
channel that mentions the app is skipped too: the ``app_mention`` event for the same message
runs it (subscribe to ``app_mention`` to answer mentions).

Slack answers API errors with HTTP 200 and ``{"ok": false, "error": …}``: that is a failure.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any

from bridge.replies.base import (
    FAILED,
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
from bridge.replies.text import escape, mrkdwn, split

LIMIT = 4000  # characters of `text` Slack recommends per message (40 000 are truncated)
RUN_EVENTS = ("message", "app_mention")
USER_SUBTYPES = ("thread_broadcast", "file_share")
_MENTION = re.compile(r"<@([A-Z0-9]+)(?:\|[^>]*)?>")


def bot_users(body: Mapping[str, Any]) -> set[str]:
    """The app's own user ids named by the delivery (``authorizations``, ``authed_users``)."""
    users = {
        ident(dig(entry, "user_id"))
        for entry in (body.get("authorizations") or [])
        if isinstance(entry, Mapping) and entry.get("is_bot", True)
    }
    authed = body.get("authed_users")
    if isinstance(authed, list) and body.get("event", {}).get("type") == "app_mention":
        users.update(ident(user) for user in authed)
    return users - {""}


class Slack(PlatformChannel):
    name = "slack"
    setting_help = "the Slack bot token (xoxb-…)"

    def skip(self, document: Mapping[str, Any]) -> str | None:  # noqa: PLR0911 - one guard each
        body = body_of(document)
        kind = body.get("type")
        if kind == "url_verification":
            return "url_verification handshake"
        if kind != "event_callback":
            return "not an Events API event callback"
        event = body.get("event")
        if not isinstance(event, Mapping):
            return "event callback without an event"
        event_type = text(event.get("type"))
        if event_type not in RUN_EVENTS:
            return f"{event_type or 'unknown'} events do not run the app"
        subtype = text(event.get("subtype"))
        if event.get("bot_id") or event.get("bot_profile") or subtype == "bot_message":
            return "message from a bot"
        own = bot_users(body)
        if ident(event.get("user")) in own:
            return "the app's own message"
        if event.get("app_id") and event.get("app_id") == body.get("api_app_id"):
            return "the app's own message"
        if subtype and subtype not in USER_SUBTYPES:
            return f"message subtype {subtype}"
        if event.get("hidden"):
            return "hidden message"
        if not ident(event.get("channel")) or not ident(event.get("ts")):
            return "event without a channel or ts"
        if (
            event_type == "message"
            and event.get("channel_type") != "im"
            and own & set(_MENTION.findall(text(event.get("text"))))
        ):
            return "mention of the app: answered from its app_mention event"
        if not self._query(body, event):
            return "message without text"
        return None

    def preset(self, document: Mapping[str, Any]) -> Preset | None:
        body = body_of(document)
        event = body.get("event")
        if not isinstance(event, Mapping):
            return None
        target = self.target(document)
        key = f"{target.fields['channel']}:{target.fields['thread_ts']}" if target else None
        return Preset(self._query(body, event), key, {})

    def _query(self, body: Mapping[str, Any], event: Mapping[str, Any]) -> str:
        """The event's text without the app's mention, entities decoded."""
        own = bot_users(body)
        raw = text(event.get("text"))
        if own:
            raw = _MENTION.sub(lambda m: "" if m.group(1) in own else m.group(0), raw)
        elif event.get("type") == "app_mention":
            raw = _MENTION.sub("", raw, count=1)
        return html.unescape(re.sub(r"[ \t]{2,}", " ", raw)).strip()

    def target(self, document: Mapping[str, Any]) -> Target | None:
        event = body_of(document).get("event")
        channel = ident(dig(event, "channel"))
        thread = ident(dig(event, "thread_ts")) or ident(dig(event, "ts"))
        if not channel or not thread:
            return None
        return Target(self.name, {"channel": channel, "thread_ts": thread})

    def send(self, target: Target, outcome: Outcome, credentials: Credentials) -> None:
        token = self.token(credentials)
        channel = ident(target.fields.get("channel"))
        thread = ident(target.fields.get("thread_ts"))
        if not channel:
            raise ReplyFailed("slack reply target has no channel")
        shown = message(outcome)
        formatted = escape(shown) if outcome.status == FAILED else mrkdwn(shown)
        api = self.http.api(self.name)
        headers = {"authorization": f"Bearer {token}"}
        for part in split(formatted, LIMIT):
            payload: dict[str, Any] = {"channel": channel, "text": part, "mrkdwn": True}
            if thread:
                payload["thread_ts"] = thread
            reply = self.http.call(api, "POST", "/chat.postMessage", payload, headers)
            if not reply.ok():
                error = reply.field("error")
                code = re.sub(r"[^a-z0-9_]", "", error) if isinstance(error, str) else ""
                raise ReplyFailed(f"slack API: {code or 'not ok'}")
