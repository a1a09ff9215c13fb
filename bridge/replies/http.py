"""Platform API calls of the reply channels, over the Send webhook tool's client.

Every call goes through :func:`bridge.transport.outbound.send_request`: timeouts, bounded retries
with back-off on connection errors, 429 and 5xx (``Retry-After`` honoured up to 30 s), and the SSRF
guard. API bases: the platform's public default, replaced by ``APP_BRIDGE_<PLATFORM>_API`` from
the process environment (read once; trusted: its exact ``host:port`` may be private, so
loopback fakes work), or by the endpoint's ``reply_url`` where a channel allows it (GitHub
Enterprise, self-hosted GitLab; never trusted: public addresses only).

Failures become :class:`~bridge.replies.base.ReplyFailed` with a short text: the platform,
the HTTP status or the transport problem, and the platform's own error code when it gives one
(``channel_not_found``, ``Bad Request: chat not found``) — never a URL (Telegram's holds the
token), a header or the payload.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import httpx

from bridge.replies.base import (
    OK_EMPTY,
    Ack,
    Credentials,
    ReplyFailed,
    accepted,
    ignored_json,
    require_token,
)
from bridge.transport import outbound

DEFAULT_BASES = {
    "slack": "https://slack.com/api",
    "discord": "https://discord.com/api/v10",
    "telegram": "https://api.telegram.org",
    "line": "https://api.line.me",
    "whatsapp": "https://graph.facebook.com",
    "github": "https://api.github.com",
    "gitlab": "https://gitlab.com/api/v4",
}
ENVIRONMENT = {name: f"APP_BRIDGE_{name.upper()}_API" for name in DEFAULT_BASES}
REPLY_HOSTS = "APP_BRIDGE_REPLY_ALLOWED_HOSTS"  # operator's allow-list for reply_url hosts
TIMEOUT = 10.0
MAX_ATTEMPTS = 4
BACKOFF = 0.5
_OK_FIRST = re.compile(r'\s*\{\s*"ok"\s*:\s*true\b')
_SAFE_CODE = re.compile(r"[^\w .,:;'()/@#+-]")


@cache
def environment_bases() -> Mapping[str, str]:
    """``APP_BRIDGE_<PLATFORM>_API`` values set in the process environment (read once)."""
    found = {}
    for name, variable in ENVIRONMENT.items():
        value = os.environ.get(variable, "").strip().rstrip("/")
        if value:
            found[name] = value
    return found


@cache
def reply_allowed_hosts() -> tuple[str, ...]:
    """``APP_BRIDGE_REPLY_ALLOWED_HOSTS`` (comma/space separated ``host[:port]``, read once):
    when set, ``reply_url`` may name only these hosts, and an exact entry may be private (a
    self-managed GitLab on the office network). Unset: any public host, nothing private."""
    value = os.environ.get(REPLY_HOSTS, "")
    return tuple(entry for entry in re.split(r"[\s,;]+", value) if entry)


def host_port(url: str) -> str:
    """``host:port`` of a URL, as an exact ``allowed_hosts`` entry."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname or ""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class PlatformRefused(ReplyFailed):
    """The platform answered, but not with success; ``status`` is its HTTP status (None when
    it never answered) and ``code`` its own error code or description, if any."""

    def __init__(self, message: str, status: int | None, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True, slots=True)
class Reply:
    """A platform's 2xx answer."""

    status: int
    text: str
    data: Any  # parsed JSON, or None

    def field(self, name: str) -> Any:
        return self.data.get(name) if isinstance(self.data, dict) else None

    def ok(self) -> bool:
        """The body's ``"ok": true`` (Slack, Telegram). Their answers echo the message, so a
        long one is cut by the read limit and is no JSON: then its start is read instead."""
        if isinstance(self.data, dict):
            return self.data.get("ok") is True
        return bool(_OK_FIRST.match(self.text))


@dataclass(frozen=True, slots=True)
class Api:
    """One platform's API base and whether the SSRF guard trusts it."""

    platform: str
    base: str  # no trailing slash
    allowed_hosts: tuple[str, ...] | None  # exact host:port of an operator-set base, else None
    pooled: bool = True  # a platform's own API: one kept-alive client per host (not reply_url)


@dataclass(frozen=True)
class Http:
    """How a channel calls its platform. Tests inject ``sleep``, ``clock`` and ``bases``."""

    timeout: float = TIMEOUT
    max_attempts: int = MAX_ATTEMPTS
    backoff: float = BACKOFF
    sleep: Callable[[float], None] | None = None
    clock: Callable[[], float] = time.time
    bases: Mapping[str, str] | None = field(default=None)  # None: environment_bases()
    reply_hosts: tuple[str, ...] | None = None  # None: reply_allowed_hosts()

    def reply_url_hosts(self) -> tuple[str, ...] | None:
        """``allowed_hosts`` for a ``reply_url`` (None: public addresses only)."""
        hosts = reply_allowed_hosts() if self.reply_hosts is None else self.reply_hosts
        return hosts or None

    def api(self, platform: str, reply_url: str = "", api_path: str = "") -> Api:
        """The API for ``platform``: ``reply_url`` when given (not trusted unless the operator
        lists its host in ``APP_BRIDGE_REPLY_ALLOWED_HOSTS``; when it names
        just a server, ``api_path`` such as ``/api/v3`` is added), else the process
        environment's base (trusted), else the public default."""
        override = reply_url.strip()
        if override:
            if api_path and urlsplit(override).path.strip("/") == "":
                override = override.rstrip("/") + api_path
            return Api(platform, override.rstrip("/"), self.reply_url_hosts(), pooled=False)
        bases = environment_bases() if self.bases is None else self.bases
        configured = (bases.get(platform) or "").strip().rstrip("/")
        if configured:
            return Api(platform, configured, (host_port(configured),))
        return Api(platform, DEFAULT_BASES[platform], None)

    def call(
        self,
        api: Api,
        method: str,
        path: str,
        payload: Any,
        headers: Mapping[str, str] | None = None,
        *,
        also_ok: frozenset[int] = frozenset(),
    ) -> Reply:
        """Send ``payload`` as JSON to ``api.base + path``; the 2xx :class:`Reply`, else
        :class:`PlatformRefused` (a :class:`ReplyFailed`)."""
        content = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        sent = {"content-type": "application/json; charset=utf-8", **(headers or {})}
        try:
            delivery = outbound.send_request(
                method,
                api.base + path,
                content,
                sent,
                timeout=self.timeout,
                max_attempts=self.max_attempts,
                backoff=self.backoff,
                allowed_hosts=api.allowed_hosts,
                sleep=self.sleep,
                client=pooled_client(host_port(api.base)) if api.pooled else None,
            )
        except outbound.WebhookInputError as exc:
            where = "reply_url" if not api.pooled else f"{api.platform} API"
            raise PlatformRefused(f"{where} refused: {refusal(exc)}", None) from None
        data = _json(delivery.response_body)
        if not delivery.ok and delivery.status not in also_ok:
            code = platform_error(data)
            detail = f" ({code})" if code else ""
            raise PlatformRefused(
                f"{api.platform} API: {delivery.error}{detail}", delivery.status, code
            )
        return Reply(delivery.status or 200, delivery.response_body, data)


class PlatformChannel:
    """What the platform channels share: their :class:`Http`, the ``reply_token`` check and
    the acks (``200`` empty, or ``202`` JSON for senders that read it: GitHub, GitLab)."""

    name: str
    setting_help = ""  # what reply_token must hold; "" when the channel needs none
    json_acks = False

    def __init__(self, http: Http | None = None) -> None:
        self.http = http or Http()

    def token(self, credentials: Credentials) -> str:
        """The ``reply_token``; :class:`ReplyFailed` naming the setting when it is empty."""
        return require_token(credentials, self.setting_help)

    def check(self, credentials: Credentials) -> None:
        if self.setting_help:
            self.token(credentials)

    def ack(self, delivery_id: str) -> Ack:
        return accepted(delivery_id) if self.json_acks else OK_EMPTY

    def ignored(self, reason: str) -> Ack:
        return ignored_json(reason) if self.json_acks else OK_EMPTY


@cache
def pooled_client(host: str) -> httpx.Client:
    """One client per platform API host for the process: its TLS context is built once and
    its connections are kept alive (bridge.transport.outbound still resolves, checks and pins every
    attempt). Settings as outbound's own client: no proxy, no redirects, system CAs."""
    return httpx.Client(
        timeout=TIMEOUT,
        follow_redirects=False,
        trust_env=False,
        verify=httpx.create_ssl_context(),
        limits=httpx.Limits(max_connections=16, max_keepalive_connections=4),
    )


def _json(text: str) -> Any:
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def refusal(exc: outbound.WebhookInputError) -> str:
    """The SSRF guard's reason, without its advice about the Send webhook tool's settings."""
    reason = str(exc).split(": webhooks can only go to public addresses", 1)[0]
    return f"{reason} (only public addresses are allowed)" if reason != str(exc) else reason


def platform_error(data: Any) -> str:
    """The platform's short error code or description from an error body, made safe."""
    if not isinstance(data, dict):
        return ""
    for key in ("error", "description", "message", "error_description"):
        value = data.get(key)
        if isinstance(value, dict):  # Graph API: {"error": {"message", "code"}}
            value = value.get("message")
        if isinstance(value, str) and value.strip():
            return _SAFE_CODE.sub("", value.strip())[:120]
    return ""
