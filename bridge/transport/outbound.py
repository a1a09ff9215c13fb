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

Deadlines: ``timeout`` bounds each attempt as a whole — connecting, sending and receiving the
complete response — not just each network read, so a receiver that drips its answer a byte at
a time cannot hold an attempt longer (under gevent, as in the plugin process, a
``gevent.Timeout`` enforces it; elsewhere every read is bounded by what is left). ``deadline``
(default :data:`DEFAULT_DEADLINE`) bounds the whole delivery, retries and waits included: no
attempt starts or waits past it.

Destinations (server-side request forgery guard): before every attempt the URL's host is resolved
with :func:`socket.getaddrinfo` (for the URL's port), and the delivery is refused with a
:class:`WebhookInputError` — nothing but the DNS lookup happens — if ANY resolved address is on
the explicit deny list (:data:`DENIED_IPV4`, :data:`DENIED_IPV6`: every IANA special-purpose
range — loopback, private, shared/CGNAT, link-local, documentation, benchmarking, protocol
assignments such as 192.0.0.0/24, multicast, reserved — and cloud metadata / host services such
as 169.254.169.254, 168.63.129.16, 100.100.100.200, fd00:ec2::254), or is IPv6 outside global
unicast ``2000::/3``. IPv4 embedded in IPv6 (``::ffff:127.0.0.1``, NAT64 ``64:ff9b::/96``,
6to4) is judged by the IPv4 address, and legacy literals (``0x7f000001``, ``127.1``) by the
address they denote. The list is the module's own, so no Python release changes the answer.
``localhost`` and ``*.localhost`` count as loopback.
The only way to reach such an address is an ``allowed_hosts`` entry that EXACTLY names the URL's
host (a name or an IP literal, optionally with ``:port``); a wildcard such as ``*.example.com``
never unlocks a non-public address. :func:`check_url` applies the same rule to IP literals
without any DNS lookup (it is also used to validate the provider's credentials).

Pinning (DNS rebinding): the request is sent to the checked IP address itself — the URL's host is
replaced by the IP literal — with the original ``Host`` header (``host[:port]``) and, for https,
httpcore's ``sni_hostname`` extension set to the original name, which Python's :mod:`ssl` uses both
as the TLS SNI and for certificate hostname verification. If the host has several addresses, a
refused connection moves on to the next one (at most :data:`MAX_ADDRESSES`). The module's own
client ignores ``HTTP(S)_PROXY`` (``trust_env=False``): a proxy would resolve the name again, and
httpcore's HTTPS tunnel does not honour ``sni_hostname``. A caller-supplied ``client`` gets the
same pinned requests, but its proxy and TLS settings are the caller's responsibility.

Errors returned to the app are generic (``connection failed``, ``timed out``, ``could not resolve
the host``): no errno or exception text, so the tool cannot be used to probe ports.

Reply channels (``bridge.replies``, SPEC §6.1) use the same client: :func:`send_signed_body` signs
a body of their own shape (the ``callback`` channel), :func:`send_request` makes an unsigned
platform API call (any method, the caller's headers); an operator-set API base is trusted by
passing its exact ``host:port`` as ``allowed_hosts``.

Redirects are not followed (a redirect could lead past the allowed hosts). Logs name the host,
the attempt and the status only: never the secret, the URL path/query or the payload.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import logging
import re
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import gevent
import httpx
from gevent import monkey
from standardwebhooks.webhooks import Webhook

from bridge.errors import BridgeError
from bridge.transport.body import MAX_DEPTH, check_value

logger = logging.getLogger(__name__)


class _HostOnly(logging.Filter):
    """httpx logs every request's full URL at INFO; paths and queries may hold secrets (a
    Telegram bot token, a Discord interaction token, a webhook URL's key): keep the host."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) > 1:
            url = record.args[1]
            if isinstance(url, httpx.URL):
                record.args = (record.args[0], f"{url.scheme}://{url.host}/…", *record.args[2:])
        return True


logging.getLogger("httpx").addFilter(_HostOnly())

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
MAX_ADDRESSES = 4  # resolved addresses tried per attempt when connections are refused
MAX_PAYLOAD_DEPTH = MAX_DEPTH  # the same bound as request bodies (bridge.transport.body)
DEFAULT_DEADLINE = 60.0  # seconds for a whole delivery, every attempt and wait included
SCHEMES = ("http", "https")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_WEBHOOK_ID_RE = re.compile(rf"^[\x21-\x7e]{{1,{MAX_WEBHOOK_ID}}}$")
_HOST_RE = re.compile(r"^(\*\.)?[a-z0-9_-]+(\.[a-z0-9_-]+)*$|^[0-9a-f:.]*:[0-9a-f:.]*$")
_CONTROL_RE = re.compile(r"[\x00-\x20\x7f]")
# inet_aton's legacy IPv4 forms: 0x7f000001, 2130706433, 127.1, 0177.0.0.1
_LEGACY_IPV4_RE = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}$")

# -- the SSRF deny list: explicit, so no Python release changes what is refused -------------
# IANA IPv4/IPv6 Special-Purpose Address Registries (every entry, whether or not IANA marks it
# globally reachable), private and shared space, and cloud metadata / host services.
DENIED_IPV4 = tuple(
    ipaddress.IPv4Network(net)
    for net in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",  # private
        "100.64.0.0/10",  # shared address space (CGNAT; Alibaba metadata 100.100.100.200)
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local (AWS/GCP/Azure/OCI metadata 169.254.169.254, ECS .170.2)
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments (incl. 192.0.0.192)
        "192.0.2.0/24",  # TEST-NET-1
        "192.31.196.0/24",  # AS112-v4
        "192.52.193.0/24",  # AMT
        "192.88.99.0/24",  # deprecated 6to4 relay anycast
        "192.168.0.0/16",  # private
        "192.175.48.0/24",  # AS112 direct delegation
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # TEST-NET-2
        "203.0.113.0/24",  # TEST-NET-3
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and 255.255.255.255 broadcast
        "168.63.129.16/32",  # Azure WireServer (host platform services)
    )
)
DENIED_IPV6 = tuple(
    ipaddress.IPv6Network(net)
    for net in (
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard-only
        "2001::/23",  # IETF protocol assignments (Teredo, benchmarking, ORCHID, AMT…)
        "2001:db8::/32",  # documentation
        "2620:4f:8000::/48",  # AS112 direct delegation
        "3fff::/20",  # documentation
        "5f00::/16",  # SRv6 SIDs
        "fc00::/7",  # unique local (AWS metadata fd00:ec2::254)
        "fe80::/10",  # link-local
        "fec0::/10",  # deprecated site-local
        "ff00::/8",  # multicast
    )
)
_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")  # everything else (::1, ::/96…) is refused
_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_NAT64_WKP = ipaddress.IPv6Network("64:ff9b::/96")
_SIXTOFOUR = ipaddress.IPv6Network("2002::/16")
_NOT_PUBLIC = (
    "webhooks can only go to public addresses; to allow it, an admin must list this exact host "
    "in the provider's allowed hosts (a *. wildcard is not enough)"
)
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
    try:  # a bare IPv6 literal (::1); with a port it must be bracketed ([::1]:8080)
        return _HostRule(_normalise_host(str(ipaddress.IPv6Address(entry))), None)
    except ValueError:
        pass
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
    try:  # one spelling per IP address: [0:0::1] is ::1
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
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
    if not _exactly_allowed(rules, host, port):
        literal = _literal_address(host)
        if literal is not None and not is_public_address(literal):
            raise WebhookInputError(f"{host!r} is not a public address: {_NOT_PUBLIC}")
        if literal is None and (host == "localhost" or host.endswith(".localhost")):
            raise WebhookInputError(f"host {host!r} is a loopback name: {_NOT_PUBLIC}")
    return url


def _show_rule(rule: _HostRule) -> str:
    return rule.host if rule.port is None else f"{rule.host}:{rule.port}"


# -- destination checks (SSRF guard) -----------------------------------------------------------


def is_public_address(address: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True if ``address`` (and any IPv4 address embedded in it) may receive webhooks.

    Decided by the explicit lists :data:`DENIED_IPV4` / :data:`DENIED_IPV6` (and IPv6 must be
    global unicast, ``2000::/3``), never by :mod:`ipaddress`'s ``is_global``/``is_private``,
    whose answers change between Python patch releases.
    """
    if isinstance(address, str):
        try:
            address = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
    if isinstance(address, ipaddress.IPv4Address):
        return not any(address in net for net in DENIED_IPV4)
    embedded = _embedded_ipv4(address)
    if embedded is not None:  # mapped / NAT64 / 6to4: the IPv4 address decides
        return is_public_address(embedded)
    return address in _GLOBAL_UNICAST and not any(address in net for net in DENIED_IPV6)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped, NAT64 (well-known prefix) or 6to4 address stands for."""
    if address in _MAPPED or address in _NAT64_WKP or address in _SIXTOFOUR:
        if address in _SIXTOFOUR:
            return ipaddress.IPv4Address((int(address) >> 80) & 0xFFFFFFFF)
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address a host literal denotes (incl. legacy IPv4 forms), else None."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if _LEGACY_IPV4_RE.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _exactly_allowed(rules: tuple[_HostRule, ...], host: str, port: int) -> bool:
    """An allowed-hosts entry names exactly this host (no wildcard) and admits the port."""
    literal = _literal_address(host)
    for rule in rules:
        if rule.host.startswith("*.") or (rule.port is not None and rule.port != port):
            continue
        if rule.host == host:
            return True
        if literal is not None and _literal_address(rule.host) == literal:
            return True
    return False


@dataclass(frozen=True)
class _Target:
    """Where one delivery goes: the URL as httpx sees it, and how to pin it to an address."""

    url: httpx.URL
    host: str  # ASCII (IDNA) host, lower-case, no trailing dot, no brackets
    port: int
    host_header: str  # host[:port] as the receiver expects it

    @classmethod
    def parse(cls, url: str) -> _Target:
        try:
            parsed = httpx.URL(url)
            host = _normalise_host(parsed.raw_host.decode("ascii"))
            port = parsed.port or _DEFAULT_PORTS[parsed.scheme]
            host_header = parsed.netloc.decode("ascii")
        except (httpx.InvalidURL, UnicodeError, KeyError):
            raise WebhookInputError("the URL is not valid") from None
        if not host:
            raise WebhookInputError("the URL has no host")
        return cls(parsed, host, port, host_header)

    def addresses(self, rules: tuple[_HostRule, ...]) -> list[str]:
        """Resolved addresses, refused unless all are public or the host is exactly allowed.

        Raises :class:`WebhookInputError` (not public) or :class:`OSError` (no answer).
        """
        lookup = self.host.split("%", 1)[0]
        infos = _getaddrinfo(lookup, self.port)
        addresses: list[str] = []
        for info in infos:
            address = str(info[4][0]).split("%", 1)[0]
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise OSError("no addresses")
        if not _exactly_allowed(rules, self.host, self.port) and not all(
            is_public_address(address) for address in addresses
        ):
            if _literal_address(self.host) is not None:
                raise WebhookInputError(f"{self.host!r} is not a public address: {_NOT_PUBLIC}")
            raise WebhookInputError(
                f"host {self.host!r} resolves to a non-public address: {_NOT_PUBLIC}"
            )
        return addresses[:MAX_ADDRESSES]

    def pinned(self, address: str) -> tuple[httpx.URL, dict[str, str], dict[str, object]]:
        """URL aimed at ``address``, the Host header, and the request extensions (SNI)."""
        extensions: dict[str, object] = {}
        if self.url.scheme == "https" and _literal_address(self.host) is None:
            extensions["sni_hostname"] = self.host  # TLS SNI and certificate hostname check
        return self.url.copy_with(host=address), {"host": self.host_header}, extensions


def _getaddrinfo(host: str, port: int) -> list[tuple]:
    """``socket.getaddrinfo`` for TCP (looked up at call time, so gevent's patch applies)."""
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


def parse_payload(payload: object) -> object:
    """Return the payload as a JSON object or array (given as such, or as JSON text).

    At most :data:`MAX_PAYLOAD_DEPTH` levels deep, UTF-8 encodable (no lone surrogates).
    """
    if isinstance(payload, (bytes, bytearray)):
        try:
            payload = payload.decode("utf-8", errors="strict")
        except UnicodeDecodeError:
            raise WebhookInputError("the payload is not valid UTF-8") from None
    if isinstance(payload, str):
        if not payload.strip():
            raise WebhookInputError("the payload is empty: give a JSON object such as {}")
        try:
            payload = json.loads(payload, parse_constant=_reject_constant)
        except json.JSONDecodeError as exc:
            raise WebhookInputError(
                f"the payload is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from None
        except RecursionError:
            raise _too_deep() from None
        except WebhookInputError:
            raise
        except ValueError:  # e.g. an integer of more than 4300 digits
            raise WebhookInputError("the payload has a number too long to convert") from None
    if not isinstance(payload, (dict, list)):
        raise WebhookInputError(
            f"the payload must be a JSON object or array, not {_json_kind(payload)}"
        )
    try:
        check_value(payload, "the payload", strings=False)
    except BridgeError:
        raise _too_deep() from None
    try:
        json.dumps(payload, allow_nan=False, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise WebhookInputError(
            "the payload contains a lone UTF-16 surrogate (such as \\ud800)"
        ) from None
    except (TypeError, ValueError, RecursionError):
        raise WebhookInputError("the payload contains values that are not JSON") from None
    return payload


def _too_deep() -> WebhookInputError:
    return WebhookInputError(f"the payload is nested more than {MAX_PAYLOAD_DEPTH} levels deep")


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
        text = (Path(__file__).resolve().parents[2] / "manifest.yaml").read_text("utf-8")
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
    refused: bool = False  # the connection was refused/failed before anything was sent


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
    deadline: float = DEFAULT_DEADLINE,
) -> Delivery:
    """POST one signed event with bounded retries; raise WebhookInputError on invalid input.

    Also raises WebhookInputError, before anything is sent, when the host resolves to a
    non-public address that the allowed hosts do not name exactly (see the module docstring).
    ``timeout`` bounds each attempt as a whole, ``deadline`` the whole delivery.
    """
    check_url(url, allowed_hosts)  # first, as before: the URL is the likeliest mistake
    event_type = check_event_type(event_type)
    body = envelope(event_type, parse_payload(payload))
    return send_signed_body(
        url,
        body,
        secret,
        webhook_id=check_webhook_id(idempotency_key),
        timeout=timeout,
        max_attempts=max_attempts,
        backoff=backoff,
        client=client,
        allowed_hosts=allowed_hosts,
        sleep=sleep,
        deadline=deadline,
    )


def send_signed_body(
    url: str,
    body: str,
    secret: str,
    *,
    webhook_id: str,
    timeout: float = 10.0,
    max_attempts: int = 4,
    backoff: float = 0.5,
    client: httpx.Client | None = None,
    allowed_hosts: str | Iterable[str] | None = None,
    sleep: Callable[[float], None] | None = None,
    deadline: float = DEFAULT_DEADLINE,
) -> Delivery:
    """Like :func:`send_signed`, for a JSON ``body`` of the caller's own shape (no envelope).

    Used by the ``callback`` reply channel (SPEC §6.1): same signing, retries and SSRF guard.
    """
    target, rules = _destination(url, allowed_hosts)
    webhook = Webhook(validate_secret(secret))
    webhook_id = check_webhook_id(webhook_id)
    return _deliver(
        target,
        rules,
        "POST",
        body.encode("utf-8"),
        lambda: signed_headers(webhook, webhook_id, body),
        webhook_id=webhook_id,
        timeout=timeout,
        max_attempts=max_attempts,
        backoff=backoff,
        client=client,
        sleep=sleep,
        deadline=deadline,
    )


def send_request(
    method: str,
    url: str,
    content: bytes,
    headers: Mapping[str, str],
    *,
    timeout: float = 10.0,
    max_attempts: int = 4,
    backoff: float = 0.5,
    client: httpx.Client | None = None,
    allowed_hosts: str | Iterable[str] | None = None,
    sleep: Callable[[float], None] | None = None,
    deadline: float = DEFAULT_DEADLINE,
) -> Delivery:
    """One unsigned request (a platform API call of a reply channel) with the same retries,
    timeouts and SSRF guard as :func:`send_signed`. ``headers`` are sent as given (plus a
    ``user-agent`` unless one is given); ``webhook_id`` of the result is empty.
    """
    target, rules = _destination(url, allowed_hosts)
    fixed = {"user-agent": user_agent(), **{k.lower(): v for k, v in headers.items()}}
    return _deliver(
        target,
        rules,
        method,
        content,
        lambda: fixed,
        webhook_id="",
        timeout=timeout,
        max_attempts=max_attempts,
        backoff=backoff,
        client=client,
        sleep=sleep,
        deadline=deadline,
    )


def signed_headers(webhook: Webhook, webhook_id: str, body: str) -> dict[str, str]:
    """Standard Webhooks headers for one attempt (a fresh timestamp and signature)."""
    now = datetime.now(UTC)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": webhook.sign(webhook_id, now, body),
        "content-type": "application/json",
        "user-agent": user_agent(),
    }


def _destination(
    url: str, allowed_hosts: str | Iterable[str] | None
) -> tuple[_Target, tuple[_HostRule, ...]]:
    url = check_url(url, allowed_hosts)
    rules = parse_hosts(allowed_hosts)
    target = _Target.parse(url)
    if rules and not any(rule.matches(target.host, target.port) for rule in rules):
        # httpx reads the host differently from urlsplit (IDNA 2008 vs 2003): be strict
        raise WebhookInputError(f"host {target.host!r} is not in the provider's allowed hosts")
    return target, rules


def _deliver(
    target: _Target,
    rules: tuple[_HostRule, ...],
    method: str,
    content: bytes,
    make_headers: Callable[[], Mapping[str, str]],
    *,
    webhook_id: str,
    timeout: float,
    max_attempts: int,
    backoff: float,
    client: httpx.Client | None,
    sleep: Callable[[float], None] | None,
    deadline: float,
) -> Delivery:
    attempts_allowed = max(1, min(int(max_attempts), MAX_ATTEMPTS))
    wait = sleep if sleep is not None else time.sleep
    own_client = client is None
    http = client or httpx.Client(
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,  # no proxy: it would resolve the host again, defeating the pinning
        verify=httpx.create_ssl_context(),  # still honours SSL_CERT_FILE / SSL_CERT_DIR
    )
    sender = _Sender(http, target, rules, method, content, make_headers)
    ends = time.monotonic() + max(0.0, deadline)
    try:
        attempt = _Attempt()
        made = 0  # attempts made (a refused re-resolution is not one)
        for count in range(1, attempts_allowed + 1):
            left = ends - time.monotonic()
            if left <= 0:
                attempt = replace(attempt, error=_overall(deadline, attempt), retry=False)
                break
            try:
                attempt = sender.attempt(count, min(timeout, left), attempt)
            except _Rebound as rebound:  # not an attempt: nothing was sent
                attempt = rebound.attempt
                break
            made = count
            logger.info(
                "webhook to %s attempt %d/%d: %s",
                target.host,
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
            if time.monotonic() + delay >= ends:
                attempt = replace(attempt, error=_overall(deadline, attempt), retry=False)
                break
            wait(delay)
    finally:
        if own_client:
            http.close()
    ok = attempt.status is not None and 200 <= attempt.status < 300
    error = None if ok else _final_error(attempt, made, attempts_allowed)
    return Delivery(
        ok=ok,
        status=attempt.status,
        attempts=made,
        webhook_id=webhook_id,
        response_body=attempt.body,
        truncated=attempt.truncated,
        error=error,
    )


class _Rebound(Exception):
    """A later attempt's destination is no longer allowed; carries the outcome so far."""

    def __init__(self, attempt: _Attempt) -> None:
        super().__init__("rebound")
        self.attempt = attempt


@dataclass(frozen=True)
class _Sender:
    """What every attempt of one delivery shares."""

    http: httpx.Client
    target: _Target
    rules: tuple[_HostRule, ...]
    method: str
    content: bytes
    make_headers: Callable[[], Mapping[str, str]]  # per attempt (fresh signature timestamps)

    def attempt(self, count: int, limit: float, previous: _Attempt) -> _Attempt:
        """Resolve, check and send once (within ``limit`` seconds); the first attempt raises
        :class:`WebhookInputError` for a non-public destination (nothing was sent)."""
        try:
            addresses = self.target.addresses(self.rules)
        except WebhookInputError as exc:
            if count == 1:
                raise
            # the name now resolves elsewhere (DNS rebinding?): stop, report what was sent
            raise _Rebound(replace(previous, error=str(exc), retry=False)) from None
        except OSError:
            return _Attempt(error="could not resolve the host", retry=True)
        headers = dict(self.make_headers())
        attempt = _Attempt()
        ends = time.monotonic() + limit
        for index, address in enumerate(addresses):
            left = ends - time.monotonic()
            if left <= 0:
                break
            attempt = _post(
                self.http, self.target, address, self.content, headers,
                timeout=left, method=self.method,
            )  # fmt: skip
            if not attempt.refused or index == len(addresses) - 1:
                break
        return attempt


def _overall(deadline: float, attempt: _Attempt) -> str:
    last = attempt.error or (f"HTTP {attempt.status}" if attempt.status is not None else "")
    reason = f" (last attempt: {last})" if last else ""
    return f"gave up: the delivery deadline of {deadline:g} s was reached{reason}"


def _final_error(attempt: _Attempt, count: int, allowed: int) -> str:
    reason = attempt.error or f"the receiver answered HTTP {attempt.status}"
    if attempt.retry and count == allowed and allowed > 1:
        return f"gave up after {count} attempts: {reason}"
    return reason


def _post(
    http: httpx.Client,
    target: _Target,
    address: str,
    content: bytes,
    headers: dict[str, str],
    *,
    timeout: float,
    method: str = "POST",
) -> _Attempt:
    """One attempt at one address; never raises for transport problems.

    Error texts are deliberately generic: no errno, no exception message (port probing).
    """
    url, host_header, extensions = target.pinned(address)
    try:
        with (
            _time_limit(timeout),
            http.stream(
                method,
                url,
                content=content,
                headers={**headers, **host_header},
                timeout=timeout,
                follow_redirects=False,
                extensions=extensions,
            ) as response,
        ):
            body, truncated = _read_body(response)
            status = response.status_code
            retry = status == 429 or 500 <= status <= 599
            delay = None
            if status in (429, 503):
                delay = retry_after_seconds(response.headers.get("retry-after"))
            return _Attempt(status, body, truncated, retry=retry, delay=delay)
    except (httpx.TimeoutException, _Overdue) as exc:
        logger.debug("webhook to %s: %s", target.host, type(exc).__name__)
        return _Attempt(
            error=f"timed out (no complete response within {timeout:.3g} s)", retry=True
        )
    except _RETRIABLE_ERRORS as exc:
        logger.debug("webhook to %s: %s", target.host, type(exc).__name__)
        refused = isinstance(exc, httpx.ConnectError)
        return _Attempt(error="connection failed", retry=True, refused=refused)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        logger.debug("webhook to %s: %s", target.host, type(exc).__name__)
        return _Attempt(error="request failed")


class _Overdue(Exception):
    """An attempt ran past its time limit."""


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Interrupt the attempt after ``seconds`` (cooperative sockets only: gevent-patched)."""
    if not monkey.is_module_patched("socket"):
        yield
        return
    with gevent.Timeout(max(seconds, 0.001), _Overdue):
        yield


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
