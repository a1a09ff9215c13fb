"""Outbound webhooks signed per Standard Webhooks: the core of the ``send_webhook`` tool (SPEC §8).

Wire format (https://www.standardwebhooks.com/):

- body: the spec's recommended envelope, UTF-8 JSON
  ``{"type": <event_type>, "timestamp": <ISO 8601 UTC, when the event was created>, "data": …}``;
- headers: ``webhook-id`` (the idempotency key, else ``msg_<uuid4 hex>``), ``webhook-timestamp``
  (Unix seconds), ``webhook-signature`` (``v1,<base64 HMAC-SHA256>`` of ``id.timestamp.body``,
  made by the ``standardwebhooks`` library), ``content-type: application/json`` and
  ``user-agent: AppBridge-Webhook/<manifest version>``.

Retries: connection errors, timeouts, HTTP 429 and 5xx are retried up to ``max_attempts`` in all,
waiting ``backoff * 2**n`` seconds (capped at :data:`MAX_BACKOFF`), or ``Retry-After`` on 429/503
when it is at most :data:`MAX_RETRY_AFTER` seconds; a longer ``Retry-After`` ends the delivery.
Every attempt carries the same ``webhook-id`` and the same body, so receivers can deduplicate;
``webhook-timestamp`` and the signature are made afresh per attempt, as the spec allows, so a
retry is never rejected as stale by the receiver's 5-minute replay window.

Redirects are not followed (a redirect could lead past the allowed hosts). Logs name the host,
the attempt and the status only: never the secret, the URL path/query or the payload.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from standardwebhooks.webhooks import Webhook

logger = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"  # noqa: S105 - a format prefix, not a secret
MIN_SECRET_BYTES = 24  # the spec: secrets SHOULD be 24 to 64 bytes
MAX_SECRET_BYTES = 64
MAX_BODY_CHARS = 4096
_MAX_BODY_BYTES = MAX_BODY_CHARS * 4 + 4  # enough bytes for 4096 characters of UTF-8
MAX_ATTEMPTS = 10
MAX_BACKOFF = 8.0
MAX_RETRY_AFTER = 30.0
MAX_EVENT_TYPE = 200
MAX_WEBHOOK_ID = 256
SCHEMES = ("http", "https")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_WEBHOOK_ID_RE = re.compile(rf"^[\x21-\x7e]{{1,{MAX_WEBHOOK_ID}}}$")
_HOST_RE = re.compile(r"^(\*\.)?[a-z0-9_-]+(\.[a-z0-9_-]+)*$|^[0-9a-f:.]*:[0-9a-f:.]*$")
_CONTROL_RE = re.compile(r"[\x00-\x20\x7f]")
_RETRIABLE_ERRORS = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
    httpx.ProxyError,
)


class WebhookInputError(ValueError):
    """Input that cannot be sent; the message says what to fix and never echoes secrets."""


@dataclass(frozen=True)
class Delivery:
    """Outcome of one delivery (all attempts). ``ok`` means the last answer was 2xx."""

    ok: bool
    status: int | None
    attempts: int
    webhook_id: str
    response_body: str = ""
    truncated: bool = False
    error: str | None = None

    def as_dict(self) -> dict[str, object]:
        """JSON-ready fields, in a stable order."""
        return asdict(self)


@dataclass(frozen=True)
class _HostRule:
    host: str  # lower-case; a leading "*." matches any subdomain (not the domain itself)
    port: int | None

    def matches(self, host: str, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.host.startswith("*."):
            return host.endswith(self.host[1:]) and host != self.host[2:]
        return host == self.host


# -- validation ----------------------------------------------------------------------------


def validate_secret(secret: object) -> str:
    """Return the secret if it is ``whsec_<base64 of 24-64 bytes>``, else raise ValueError."""
    if not isinstance(secret, str) or not secret.strip():
        raise WebhookInputError("the signing secret is empty: set it in the provider credentials")
    secret = secret.strip()
    if not secret.startswith(SECRET_PREFIX):
        raise WebhookInputError(
            "the signing secret must be in Standard Webhooks format: 'whsec_' followed by "
            "the base64 of 24 to 64 random bytes"
        )
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise WebhookInputError(
            "the signing secret after 'whsec_' is not valid base64 (use A-Z, a-z, 0-9, + and /)"
        ) from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise WebhookInputError(
            f"the signing secret must encode {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} random "
            f"bytes (it encodes {len(key)})"
        )
    return secret


def parse_hosts(value: str | Iterable[str] | None) -> tuple[_HostRule, ...]:
    """Parse an allowed-host list: comma/space separated ``host``, ``host:port``, ``*.domain``."""
    if value is None:
        return ()
    items = re.split(r"[\s,;]+", value) if isinstance(value, str) else list(value)
    rules: list[_HostRule] = []
    for item in items:
        entry = str(item).strip().lower()
        if entry:
            rules.append(_parse_host_entry(entry))
    return tuple(rules)


def _parse_host_entry(entry: str) -> _HostRule:
    invalid = WebhookInputError(
        f"allowed host {entry!r} is not a host name (examples: hooks.example.com, "
        "example.com:8443, *.example.com)"
    )
    try:
        parts = urlsplit(entry if "://" in entry else f"//{entry}")
        port = parts.port
    except ValueError:
        raise invalid from None
    host = _normalise_host(parts.hostname or "")
    if (
        not host
        or parts.username is not None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or not _HOST_RE.match(host)
    ):
        raise invalid
    return _HostRule(host, port)


def _normalise_host(host: str) -> str:
    host = host.strip().lower().rstrip(".")
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def check_url(url: object, allowed_hosts: str | Iterable[str] | None = None) -> str:
    """Return ``url`` if it is http(s), without credentials, on an allowed host (when listed)."""
    if not isinstance(url, str) or not url.strip():
        raise WebhookInputError(
            "no URL to send to: set the tool's URL or the provider's default URL"
        )
    url = url.strip()
    if _CONTROL_RE.search(url):
        raise WebhookInputError("the URL must not contain spaces or control characters")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        shown = f" (got {scheme}:)" if scheme else ""
        raise WebhookInputError(f"only http:// and https:// URLs can be called{shown}")
    if parts.username is not None or parts.password is not None:
        raise WebhookInputError(
            "the URL must not contain credentials (user:password@); the signature "
            "authenticates the request"
        )
    try:
        port = parts.port or _DEFAULT_PORTS[scheme]
    except ValueError:
        raise WebhookInputError("the URL has an invalid port") from None
    host = _normalise_host(parts.hostname or "")
    if not host:
        raise WebhookInputError("the URL has no host")
    rules = parse_hosts(allowed_hosts)
    if rules and not any(rule.matches(host, port) for rule in rules):
        listed = ", ".join(_show_rule(rule) for rule in rules)
        raise WebhookInputError(f"host {host!r} is not in the provider's allowed hosts ({listed})")
    return url


def _show_rule(rule: _HostRule) -> str:
    return rule.host if rule.port is None else f"{rule.host}:{rule.port}"


def parse_payload(payload: object) -> object:
    """Return the payload as a JSON object or array (given as such, or as JSON text)."""
    if isinstance(payload, (bytes, bytearray)):
        payload = payload.decode("utf-8", errors="strict")
    if isinstance(payload, str):
        if not payload.strip():
            raise WebhookInputError("the payload is empty: give a JSON object such as {}")
        try:
            payload = json.loads(payload, parse_constant=_reject_constant)
        except json.JSONDecodeError as exc:
            raise WebhookInputError(
                f"the payload is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from None
    if not isinstance(payload, (dict, list)):
        raise WebhookInputError(
            f"the payload must be a JSON object or array, not {_json_kind(payload)}"
        )
    try:
        json.dumps(payload, allow_nan=False)
    except (TypeError, ValueError):
        raise WebhookInputError("the payload contains values that are not JSON") from None
    return payload


def _reject_constant(name: str) -> object:
    raise WebhookInputError(f"the payload is not valid JSON: {name} is not allowed")


def _json_kind(value: object) -> str:
    kinds = {str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    if value is None:
        return "null"
    return kinds.get(type(value), type(value).__name__)


def check_event_type(event_type: object) -> str:
    """Return the stripped event type (e.g. ``order.created``)."""
    if not isinstance(event_type, str) or not event_type.strip():
        raise WebhookInputError("the event type is empty: give a name such as order.created")
    event_type = event_type.strip()
    if len(event_type) > MAX_EVENT_TYPE or re.search(r"[\x00-\x1f\x7f]", event_type):
        raise WebhookInputError(
            f"the event type must be at most {MAX_EVENT_TYPE} characters without control characters"
        )
    return event_type


def check_webhook_id(idempotency_key: object) -> str:
    """Return the idempotency key as a webhook id, or a fresh ``msg_<uuid4 hex>``."""
    if idempotency_key is None or (isinstance(idempotency_key, str) and not idempotency_key):
        return f"msg_{uuid.uuid4().hex}"
    if not isinstance(idempotency_key, str) or not _WEBHOOK_ID_RE.match(idempotency_key.strip()):
        raise WebhookInputError(
            f"the idempotency key must be 1 to {MAX_WEBHOOK_ID} printable ASCII characters "
            "without spaces"
        )
    return idempotency_key.strip()


@cache
def user_agent() -> str:
    """``AppBridge-Webhook/<version>`` with the version from ``manifest.yaml``."""
    version = "0"
    try:
        text = (Path(__file__).resolve().parent.parent / "manifest.yaml").read_text("utf-8")
    except OSError:
        text = ""
    match = re.search(r"^version:\s*[\"']?([0-9A-Za-z.+-]+)", text, re.MULTILINE)
    if match:
        version = match.group(1)
    return f"AppBridge-Webhook/{version}"


# -- delivery ------------------------------------------------------------------------------


def envelope(event_type: str, payload: object, created: datetime | None = None) -> str:
    """The JSON body: ``{"type", "timestamp", "data"}`` (Standard Webhooks' recommendation)."""
    created = created or datetime.now(UTC)
    stamp = created.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    body = {"type": event_type, "timestamp": stamp, "data": payload}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def backoff_delay(retry: int, base: float) -> float:
    """Seconds to wait before retry number ``retry`` (1-based): ``base * 2**(retry-1)``, capped."""
    return max(0.0, min(base * 2 ** (retry - 1), MAX_BACKOFF))


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or HTTP date), or None when absent/invalid."""
    if not value or not value.strip():
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass
class _Attempt:
    status: int | None = None
    body: str = ""
    truncated: bool = False
    error: str | None = None
    retry: bool = False
    delay: float | None = None  # from Retry-After


def send_signed(
    url: str,
    event_type: str,
    payload: object,
    secret: str,
    *,
    idempotency_key: str | None = None,
    timeout: float = 10.0,
    max_attempts: int = 4,
    backoff: float = 0.5,
    client: httpx.Client | None = None,
    allowed_hosts: str | Iterable[str] | None = None,
    sleep: Callable[[float], None] | None = None,
) -> Delivery:
    """POST one signed event with bounded retries; raise WebhookInputError on invalid input."""
    url = check_url(url, allowed_hosts)
    event_type = check_event_type(event_type)
    data = parse_payload(payload)
    webhook = Webhook(validate_secret(secret))
    webhook_id = check_webhook_id(idempotency_key)
    attempts_allowed = max(1, min(int(max_attempts), MAX_ATTEMPTS))
    body = envelope(event_type, data)
    content = body.encode("utf-8")
    host = urlsplit(url).hostname or ""
    wait = sleep if sleep is not None else time.sleep
    own_client = client is None
    http = client or httpx.Client(timeout=timeout, follow_redirects=False)
    try:
        attempt = _Attempt()
        count = 0
        for count in range(1, attempts_allowed + 1):
            now = datetime.now(UTC)
            headers = {
                "webhook-id": webhook_id,
                "webhook-timestamp": str(int(now.timestamp())),
                "webhook-signature": webhook.sign(webhook_id, now, body),
                "content-type": "application/json",
                "user-agent": user_agent(),
            }
            attempt = _post(http, url, content, headers, timeout)
            logger.info(
                "webhook to %s attempt %d/%d: %s",
                host,
                count,
                attempts_allowed,
                attempt.status if attempt.status is not None else attempt.error,
            )
            if not attempt.retry or count == attempts_allowed:
                break
            delay = attempt.delay if attempt.delay is not None else backoff_delay(count, backoff)
            if delay > MAX_RETRY_AFTER:
                attempt.error = (
                    f"the receiver asked to retry after {delay:.0f} s (more than "
                    f"{MAX_RETRY_AFTER:.0f} s); not retried"
                )
                break
            wait(delay)
    finally:
        if own_client:
            http.close()
    ok = attempt.status is not None and 200 <= attempt.status < 300
    error = None if ok else _final_error(attempt, count, attempts_allowed)
    return Delivery(
        ok=ok,
        status=attempt.status,
        attempts=count,
        webhook_id=webhook_id,
        response_body=attempt.body,
        truncated=attempt.truncated,
        error=error,
    )


def _final_error(attempt: _Attempt, count: int, allowed: int) -> str:
    reason = attempt.error or f"the receiver answered HTTP {attempt.status}"
    if attempt.retry and count == allowed and allowed > 1:
        return f"gave up after {count} attempts: {reason}"
    return reason


def _post(
    http: httpx.Client, url: str, content: bytes, headers: dict[str, str], timeout: float
) -> _Attempt:
    """One attempt; never raises for transport problems."""
    try:
        with http.stream(
            "POST", url, content=content, headers=headers, timeout=timeout, follow_redirects=False
        ) as response:
            body, truncated = _read_body(response)
            status = response.status_code
            retry = status == 429 or 500 <= status <= 599
            delay = None
            if status in (429, 503):
                delay = retry_after_seconds(response.headers.get("retry-after"))
            return _Attempt(status, body, truncated, retry=retry, delay=delay)
    except httpx.TimeoutException:
        return _Attempt(error=f"no response within {timeout:g} s", retry=True)
    except _RETRIABLE_ERRORS as exc:
        return _Attempt(error=f"connection failed ({_describe(exc)})", retry=True)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return _Attempt(error=f"request failed ({_describe(exc)})")


def _read_body(response: httpx.Response) -> tuple[str, bool]:
    """Read at most enough bytes for :data:`MAX_BODY_CHARS` characters."""
    chunks: list[bytes] = []
    size = 0
    complete = True
    for chunk in response.iter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > _MAX_BODY_BYTES:
            complete = False
            break
    raw = b"".join(chunks)
    try:
        text = raw.decode(response.encoding or "utf-8", errors="replace")
    except LookupError:
        text = raw.decode("utf-8", errors="replace")
    truncated = not complete or len(text) > MAX_BODY_CHARS
    return text[:MAX_BODY_CHARS], truncated


def _describe(exc: BaseException) -> str:
    """Exception class and message on one short line (httpx messages carry no URL)."""
    message = " ".join(str(exc).split())[:200]
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
