"""The one interface every reply channel implements (SPEC §6.1 "Replies", "Platform presets").

Note to twoway-core (how the webhook uses a channel; names are stable from this commit on):

1. ``ch = bridge.replies.channel(settings.webhook_reply)`` (``KeyError`` for an unknown name;
   ``"response"`` is not a channel). ``ch.check(credentials)`` raises :class:`ReplyFailed`
   naming the setting (``reply_token`` / ``reply_url``) when the settings cannot work — answer
   with a settings error before anything runs.
2. After verification and handshakes (Slack ``url_verification``, Discord PING, Meta GET are
   yours), with the mapping ``document`` of SPEC §6 (``{"body", "headers" (lower-case),
   "query", "method", "path"}``):
   - ``reason = ch.skip(document)``: not None → do not run, answer ``ch.ignored(reason)``;
   - ``target = ch.target(document)``: None → nowhere to reply; treat like a skip;
   - ``preset = ch.preset(document)``: the query / conversation key / inputs an admin would have
     mapped by hand; explicit ``webhook_query`` / ``webhook_user`` / ``webhook_inputs`` win.
     ``preset.conversation_key`` plays the role of ``webhook_user``'s value.
   - answer the platform with ``ch.ack(delivery_id)`` (Slack 200 empty, Discord ``{"type":5}``,
     Telegram/LINE/WhatsApp 200, GitHub/GitLab/callback 202 ``{"status":"accepted","id":…}``).
3. ``target.to_json()`` travels in the continuation body; ``Target.from_json`` restores it.
4. In the continuation, after the run: ``ch.send(target, outcome, credentials)``. It makes the
   HTTP calls (timeouts, bounded retries honouring ``Retry-After``, SSRF guard for ``reply_url``)
   and raises :class:`ReplyFailed` (``str()`` safe to log) when the platform did not take it.
   ``send`` never raises anything else for transport or platform problems.

Process tests: run the plugin with ``devkit.fakes.FakePlatforms().environment()`` — the
``APP_BRIDGE_<PLATFORM>_API`` bases and ``APP_BRIDGE_REPLY_ALLOWED_HOSTS`` (the fakes' host), so
a ``reply_url`` of ``fakes.base("callback")`` is reachable although ``reply_url`` is untrusted.

Every method but ``send`` is pure (no I/O) and never raises on odd documents: a body that is not
the platform's shape gives ``skip`` a reason, and ``preset``/``target`` None.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

SUCCEEDED = "succeeded"
FAILED = "failed"
PAUSED = "paused"
STATUSES = (SUCCEEDED, FAILED, PAUSED)


class ReplyFailed(Exception):
    """The reply could not be delivered (or cannot be, with these settings).

    ``str(exc)`` is short, plain and safe to log or show: never a token, URL path, payload,
    traceback or exception repr.
    """


@dataclass(frozen=True, slots=True)
class Preset:
    """What a platform's admin would have mapped by hand (SPEC §6.1)."""

    query: str
    conversation_key: str | None = None  # e.g. "C123:1700000000.000100" (channel + thread)
    inputs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Target:
    """Where the answer goes; JSON-serialisable, travels in the continuation body.

    ``fields`` per channel: slack ``{channel, thread_ts}``; discord ``{application_id, token}``;
    telegram ``{chat_id, message_id}``; line ``{reply_token, to, received_at}`` (``received_at``
    = the event's ``timestamp`` in Unix seconds); whatsapp ``{phone_number_id, to,
    message_id}``; github ``{repo, number}``; gitlab ``{project_id, kind, iid}`` (``kind`` is
    ``issues`` or ``merge_requests``); callback ``{}``.
    """

    channel: str
    fields: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"channel": self.channel, "fields": dict(self.fields)}

    @classmethod
    def from_json(cls, data: object) -> Target:
        """Inverse of :meth:`to_json`; ``ValueError`` when ``data`` is not such a dict."""
        if not isinstance(data, Mapping):
            raise ValueError("reply target is not an object")  # noqa: TRY004 - one error type
        channel, fields = data.get("channel"), data.get("fields", {})
        if not isinstance(channel, str) or not channel or not isinstance(fields, Mapping):
            raise ValueError("reply target has no channel or fields")
        return cls(channel, dict(fields))


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the run produced."""

    delivery_id: str
    status: str  # SUCCEEDED | FAILED | PAUSED
    answer: str = ""  # text for the platform ("" when failed)
    outputs: Mapping[str, Any] | None = None
    conversation_id: str | None = None
    error: str | None = None  # short plain text, safe to show (never a traceback/secret)


@dataclass(frozen=True, slots=True)
class Ack:
    """The platform's immediate answer (SPEC §6.1)."""

    status: int
    body: bytes = b""
    content_type: str | None = None


@dataclass(frozen=True, slots=True)
class Credentials:
    """The endpoint's reply settings."""

    token: str = ""  # reply_token
    url: str = ""  # reply_url ("" = the platform's default API base)


class Channel(Protocol):
    name: str

    def check(self, credentials: Credentials) -> None:
        """Raise :class:`ReplyFailed` naming the setting when these settings cannot work."""

    def skip(self, document: Mapping[str, Any]) -> str | None:
        """A reason NOT to run at all (bot message, edit, non-message event), else None."""

    def preset(self, document: Mapping[str, Any]) -> Preset | None:
        """Query, conversation key and inputs extracted from the delivery, or None."""

    def target(self, document: Mapping[str, Any]) -> Target | None:
        """Where the reply goes, or None when the delivery has no place to reply to."""

    def ack(self, delivery_id: str) -> Ack:
        """The immediate answer for a delivery that will run (deferred)."""

    def ignored(self, reason: str) -> Ack:
        """The immediate answer for a delivery that is skipped (no run, no reply)."""

    def send(self, target: Target, outcome: Outcome, credentials: Credentials) -> None:
        """Deliver the outcome; raise :class:`ReplyFailed` when the platform did not take it."""


# --- helpers shared by the channel modules ---------------------------------------------------

OWN_MARKER = (
    "<!-- app-bridge reply -->"  # ends comments and notes the bridge posts (GitHub, GitLab)
)
EMPTY_ANSWER = "(The app returned an empty answer.)"
PAUSED_MESSAGE = "The app is waiting for input, which cannot be given from here."
FAILED_MESSAGE = "Sorry, the app could not answer this time."
MAX_ERROR_CHARS = 200
_CONTROL = {code: " " for code in range(32) if code != 10} | {127: " "}


def body_of(document: Mapping[str, Any]) -> Mapping[str, Any]:
    """The delivery's JSON object body, or an empty mapping."""
    body = document.get("body") if isinstance(document, Mapping) else None
    return body if isinstance(body, Mapping) else {}


def header(document: Mapping[str, Any], name: str) -> str:
    """A request header of the document (keys are lower-case), or ""."""
    headers = document.get("headers") if isinstance(document, Mapping) else None
    value = headers.get(name.lower()) if isinstance(headers, Mapping) else None
    return value.strip() if isinstance(value, str) else ""


def dig(data: Any, *path: str | int) -> Any:
    """``data[p0][p1]…`` through mappings and lists, or None where the path breaks."""
    for key in path:
        if isinstance(key, int) and isinstance(data, list) and -len(data) <= key < len(data):
            data = data[key]
        elif isinstance(key, str) and isinstance(data, Mapping):
            data = data.get(key)
        else:
            return None
    return data


def text(value: Any) -> str:
    """``value`` if it is a string, else ""."""
    return value if isinstance(value, str) else ""


def ident(value: Any) -> str:
    """An id (string or integer, not boolean) as text, else ""."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return ""
    return str(value).strip()


def message(outcome: Outcome) -> str:
    """What the platform shows: the answer, a short plain failure, or the paused notice."""
    if outcome.status == FAILED:
        detail = (outcome.error or "").translate(_CONTROL).strip()
        if len(detail) > MAX_ERROR_CHARS:
            detail = detail[: MAX_ERROR_CHARS - 1].rstrip() + "…"
        return f"{FAILED_MESSAGE} ({detail})" if detail else FAILED_MESSAGE
    if outcome.status == PAUSED:
        return PAUSED_MESSAGE
    return outcome.answer if outcome.answer.strip() else EMPTY_ANSWER


def accepted(delivery_id: str) -> Ack:
    """``202 {"status": "accepted", "id": …}`` (GitHub, GitLab, callback)."""
    body = json.dumps({"status": "accepted", "id": delivery_id}, separators=(",", ":"))
    return Ack(202, body.encode(), "application/json")


def ignored_json(reason: str) -> Ack:
    """``200 {"status": "ignored", "reason": …}`` for senders that read the body."""
    body = json.dumps({"status": "ignored", "reason": reason}, separators=(",", ":"))
    return Ack(200, body.encode(), "application/json")


OK_EMPTY = Ack(200, b"", None)


def require_token(credentials: Credentials, what: str) -> str:
    """The ``reply_token``, stripped; :class:`ReplyFailed` naming the setting when empty."""
    token = credentials.token.strip()
    if not token:
        raise ReplyFailed(f"reply_token is empty: set it to {what}")
    return token
