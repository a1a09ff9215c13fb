"""Continuations: finish a webhook delivery in a second request to this endpoint (SPEC §6.1).

Dify's daemon ends a plugin session with the request that opened it (daemon-notes §A(1)),
so a run that must outlive the platform's 1–3 s budget needs a session of its own. The
original request opens one by calling its own endpoint through the daemon — ``self_url``,
default ``http://127.0.0.1:$SERVER_PORT/e/<Dify-Hook-Id>`` (the plugin shares the daemon's
network and environment, §A(3)) — on the hidden ``POST /_continue`` route, and a background
task holds that connection open until the continuation's response ends.

This module holds the pieces, none of which knows about webhooks:

- **Authentication** (:func:`sign`, :func:`verify`): ``X-App-Bridge-Continuation:
  t=<unix seconds>,n=<nonce>,v1=<hex HMAC-SHA256>`` over ``"<t>.<n>." + body``, keyed by
  HKDF-SHA256 of the endpoint's ``api_key`` with a purpose label (the key itself is never
  used or sent); valid for :data:`WINDOW` seconds.
- **Single use** (:class:`Ledger`): nonces live in process memory. The instance that mints a
  nonce is the one whose daemon the self-call reaches in Dify's local runtime (one plugin
  process), so memory is exact there, atomic, and costs no storage round trip. A nonce this
  process did not mint (another instance, or a restart) is checked against a bounded storage
  record by the caller (:data:`NONCE_KIND`); that check is best effort, storage having no
  compare-and-set.
- **Start handshake**: the continuation claims its nonce and streams ``started`` at once; the
  original waits for that line at most :data:`START_TIMEOUT`. On timeout it cancels the nonce
  (a continuation arriving later is refused, so the run happens once) unless it was claimed
  meanwhile.
- **Bounded concurrency** (:class:`Gate`): at most :data:`MAX_DEFERRED` held self-calls per
  process; beyond, the sender gets 503 with ``Retry-After``.
- **Fallback memory** (:data:`FALLBACKS`): why the last continuation of each endpoint could not
  start (the diagnostics page shows it; process memory).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx

from bridge import background

logger = logging.getLogger(__name__)

ROUTE = "/_continue"
HEADER = "X-App-Bridge-Continuation"
STARTED = b"started\n"
WINDOW = 60.0  # seconds a signed continuation stays valid
NONCE_KIND = "cnonce"  # storage records of nonces used by a continuation of another instance


def _env_float(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if value > 0 else default


MAX_DEFERRED = int(_env_float("APP_BRIDGE_MAX_DEFERRED", 32))
START_TIMEOUT = _env_float("APP_BRIDGE_CONTINUATION_START_TIMEOUT", 2.0)
HOLD_TIMEOUT = 700.0  # the daemon cuts a request 600 s after its first chunk
MAX_BODY = 9 * 1024 * 1024  # a continuation body must pass the daemon's 10 MiB cut whole
RETRY_AFTER = "5"  # seconds, for the 503 beyond MAX_DEFERRED
_KEY_LABEL = b"app-bridge continuation mac v1"
_SALT = b"app-bridge/endpoint-api-key"


# -- authentication ----------------------------------------------------------------------------


def derive_key(api_key: str) -> bytes:
    """HKDF-SHA256 (RFC 5869) of ``api_key`` with a purpose label: one 32-byte block."""
    prk = hmac.new(_SALT, api_key.encode(), hashlib.sha256).digest()
    return hmac.new(prk, _KEY_LABEL + b"\x01", hashlib.sha256).digest()


def _mac(api_key: str, timestamp: int, nonce: str, body: bytes) -> str:
    message = f"{timestamp}.{nonce}.".encode() + body
    return hmac.new(derive_key(api_key), message, hashlib.sha256).hexdigest()


def new_nonce() -> str:
    return secrets.token_urlsafe(18)


def sign(api_key: str, body: bytes, nonce: str, now: float | None = None) -> str:
    """The :data:`HEADER` value for ``body``."""
    timestamp = int(time.time() if now is None else now)
    return f"t={timestamp},n={nonce},v1={_mac(api_key, timestamp, nonce, body)}"


class Refused(Exception):
    """A continuation that must not run; ``str()`` is safe to show."""


def verify(api_key: str, header: str | None, body: bytes, now: float | None = None) -> str:
    """The nonce of a genuine, fresh continuation; :class:`Refused` otherwise."""
    if not api_key:
        raise Refused("the endpoint has no api_key")
    fields: dict[str, str] = {}
    for part in (header or "").split(","):
        name, _, value = part.strip().partition("=")
        fields.setdefault(name, value)
    try:
        timestamp = int(fields["t"])
        nonce, signature = fields["n"], fields["v1"]
    except (KeyError, ValueError):
        raise Refused("missing or malformed continuation signature") from None
    expected = _mac(api_key, timestamp, nonce, body)
    if not (nonce and hmac.compare_digest(expected, signature)):
        raise Refused("continuation signature does not match")
    current = time.time() if now is None else now
    if not -5 <= current - timestamp <= WINDOW:
        raise Refused("continuation signature has expired")
    return nonce


# -- single use --------------------------------------------------------------------------------


class Ledger:
    """Nonce states in process memory: minted → claimed (by the continuation) or cancelled."""

    def __init__(self, ttl: float = 4 * WINDOW, capacity: int = 100_000) -> None:
        self._ttl = ttl
        self._capacity = capacity
        self._lock = threading.Lock()
        self._states: OrderedDict[str, tuple[float, str]] = OrderedDict()

    def _prune(self) -> None:
        now = time.monotonic()
        while self._states:
            expires = next(iter(self._states.values()))[0]
            if expires > now and len(self._states) <= self._capacity:
                break
            self._states.popitem(last=False)

    def _set(self, nonce: str, state: str) -> None:
        self._states[nonce] = (time.monotonic() + self._ttl, state)
        self._states.move_to_end(nonce)
        self._prune()

    def mint(self, nonce: str) -> None:
        with self._lock:
            self._set(nonce, "minted")

    def knows(self, nonce: str) -> bool:
        with self._lock:
            return nonce in self._states

    def claim(self, nonce: str) -> bool:
        """True once for a nonce minted here or unknown here; False if used or cancelled."""
        with self._lock:
            state = self._states.get(nonce, (0.0, "unknown"))[1]
            if state not in ("minted", "unknown"):
                return False
            self._set(nonce, "claimed")
            return True

    def cancel(self, nonce: str) -> bool:
        """True if the nonce was not claimed (now it never will be); False if it was."""
        with self._lock:
            state = self._states.get(nonce, (0.0, "unknown"))[1]
            if state == "claimed":
                return False
            self._set(nonce, "cancelled")
            return True


LEDGER = Ledger()


# -- bounded concurrency -----------------------------------------------------------------------


class Gate:
    """At most ``limit`` deferred runs held by this process at once."""

    def __init__(self, limit: int = MAX_DEFERRED) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self.held = 0

    def enter(self) -> bool:
        with self._lock:
            if self.held >= self.limit:
                return False
            self.held += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self.held = max(0, self.held - 1)


GATE = Gate()


# -- fallback memory ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fallback:
    at: float  # unix time
    reason: str


class Fallbacks:
    """Per endpoint: the last reason a continuation could not start (bounded, in memory)."""

    def __init__(self, capacity: int = 1000) -> None:
        self._capacity = capacity
        self._lock = threading.Lock()
        self._last: OrderedDict[str, Fallback] = OrderedDict()
        self.count = 0

    def record(self, endpoint_id: str, reason: str) -> None:
        with self._lock:
            self.count += 1
            self._last[endpoint_id] = Fallback(time.time(), reason)
            self._last.move_to_end(endpoint_id)
            while len(self._last) > self._capacity:
                self._last.popitem(last=False)

    def last(self, endpoint_id: str) -> Fallback | None:
        return self._last.get(endpoint_id)


FALLBACKS = Fallbacks()


# -- the self-call -----------------------------------------------------------------------------


def default_self_url(hook_id: str, environ: Mapping[str, str] = os.environ) -> str:
    """``http://127.0.0.1:$SERVER_PORT/e/<hook_id>``, or "" when either is unknown."""
    port = (environ.get("SERVER_PORT") or "").strip()
    if not (port.isdigit() and hook_id):
        return ""
    return f"http://127.0.0.1:{port}/e/{hook_id}"


@dataclass
class SelfCall:
    """One held continuation request; :meth:`wait_started` tells whether it began."""

    url: str
    body: bytes
    headers: dict[str, str]
    on_end: Callable[[], None]
    _started: threading.Event
    _done: threading.Event
    failure: str = ""
    ended_at: float = 0.0

    def wait_started(self, timeout: float) -> bool:
        """True once the continuation has streamed its first line, within ``timeout``."""
        self._started.wait(timeout)
        return self._started.is_set() and not self.failure

    def wait_ended(self, timeout: float) -> bool:
        return self._done.wait(timeout)


def open_self_call(
    url: str, body: bytes, headers: Mapping[str, str], on_end: Callable[[], None]
) -> SelfCall:
    """Start the held request in a background task (a greenlet: the SDK patches threads)."""
    call = SelfCall(url, body, dict(headers), on_end, threading.Event(), threading.Event())
    background.start(lambda: _hold(call), "continuation")
    return call


_CLIENT: httpx.Client | None = None
_CLIENT_LOCK = threading.Lock()


def _client() -> httpx.Client:
    """One client per process (its TLS context and pool are built once, not per delivery).

    ``trust_env=False``: a daemon's ``HTTP(S)_PROXY`` must not carry a loopback self-call.
    """
    global _CLIENT  # noqa: PLW0603 - a lazily built process-wide client
    with _CLIENT_LOCK:
        if _CLIENT is None:
            _CLIENT = httpx.Client(
                trust_env=False,
                timeout=httpx.Timeout(HOLD_TIMEOUT, connect=START_TIMEOUT),
                # one connection per held continuation, closed when it ends
                limits=httpx.Limits(max_connections=MAX_DEFERRED + 8, max_keepalive_connections=0),
            )
        return _CLIENT


def _hold(call: SelfCall) -> None:
    try:
        with _client().stream("POST", call.url, content=call.body, headers=call.headers) as reply:
            if reply.status_code != 200:
                call.failure = f"self_url answered HTTP {reply.status_code}"
                return
            lines = reply.iter_lines()
            first = next(lines, "")
            if first.strip() != STARTED.decode().strip():
                call.failure = "the continuation did not confirm that it started"
                return
            call._started.set()
            for _ in lines:  # hold the connection (and so the session) until it ends
                pass
    except httpx.ConnectError:
        call.failure = "self_url is unreachable"
    except httpx.TimeoutException:
        call.failure = "self_url timed out"
    except (httpx.HTTPError, OSError) as exc:
        call.failure = f"self_url failed ({type(exc).__name__})"
    except Exception as exc:  # noqa: BLE001 - a background task must never die noisily
        call.failure = f"continuation failed ({type(exc).__name__})"
    finally:
        call.ended_at = time.monotonic()
        if call.failure:
            logger.warning("continuation: %s", call.failure)
        if call.failure:
            call._started.set()  # wake the waiter; wait_started() reads the failure
        call._done.set()
        call.on_end()


__all__ = [
    "FALLBACKS",
    "GATE",
    "HEADER",
    "LEDGER",
    "ROUTE",
    "STARTED",
    "Fallback",
    "Gate",
    "Ledger",
    "Refused",
    "SelfCall",
    "default_self_url",
    "derive_key",
    "new_nonce",
    "open_self_call",
    "sign",
    "verify",
]
