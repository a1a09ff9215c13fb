"""Storage records: small JSON values in Dify plugin storage, namespaced per endpoint,
with expiry.

Dify's plugin storage (protocol.md §6) is one namespace per tenant+plugin shared by every
endpoint, with no TTL, no listing and no compare-and-set, keys of at most 256 characters,
and a byte quota. Two daemon quirks shape this module:

- a missing key is an *error* on ``get`` and ``delete``, so misses are caught here;
- the daemon version documented in protocol.md adds ``len(value)`` to the quota on every
  ``set`` — overwrites included — and ``delete`` subtracts only the current size, so
  overwriting a key leaks quota (newer daemons count the delta; verify on your Dify).
  Records are therefore written once and deleted, never overwritten: :meth:`Records.put`
  deletes an existing value first.

Keys are ``ab/<namespace>/<kind>/<sha256(id)[:40]>``: bounded length whatever the id,
and no caller-controlled characters reach the storage path. The namespace is injective in
the endpoint id: an id of 1–64 letters, digits, ``-`` or ``_`` (Dify's are UUIDs) is used
as it is; any other id becomes ``h`` + the 64 hex digits of its SHA-256 — 65 characters,
so it can never equal a plain id.

Buckets (:meth:`Records.load` / :meth:`Records.store`, used by :mod:`bridge.storage.slots`) are the
exception to write-once: a bucket holds many small records and is rewritten in place, one
``set`` per change. That is correct on daemons that charge the size *difference* of an
overwrite — every daemon since 0.5.7 (``persistence.go`` ``Save``, #684, 2026-04-13;
Dify 1.15 ships 0.6.3). Rewriting in place rather than delete + set also means a reader
never sees a bucket missing.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from bridge.errors import describe_exception

logger = logging.getLogger(__name__)

PREFIX = "ab"


@dataclass(frozen=True, slots=True)
class Entry:
    value: object
    expires_at: float


class KeyValueStorage(Protocol):
    """The subset of ``session.storage`` this module uses."""

    def get(self, key: str) -> bytes: ...
    def set(self, key: str, val: bytes) -> None: ...
    def delete(self, key: str) -> None: ...
    def exist(self, key: str) -> bool: ...


class Records:
    """Expiring JSON records of one endpoint."""

    def __init__(
        self,
        storage: KeyValueStorage,
        endpoint_id: str | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._storage = storage
        self._namespace = namespace(endpoint_id or "default")
        self._clock = clock

    @property
    def namespace(self) -> str:
        return self._namespace

    def now(self) -> float:
        return self._clock()

    def key(self, kind: str, record_id: str) -> str:
        digest = hashlib.sha256(record_id.encode()).hexdigest()[:40]
        return f"{PREFIX}/{self._namespace}/{_safe_segment(kind)}/{digest}"

    def get(self, kind: str, record_id: str) -> object | None:
        """The stored value, or None when absent, expired (then deleted) or unreadable."""
        entry = self.entry(kind, record_id)
        return None if entry is None else entry.value

    def entry(self, kind: str, record_id: str) -> Entry | None:
        """The stored value with its expiry time, or None (see :meth:`get`)."""
        key = self.key(kind, record_id)
        try:
            raw = self._storage.get(key)
        except Exception:  # noqa: BLE001 - the SDK raises a bare Exception for a missing key
            return None
        try:
            envelope = json.loads(raw)
            expires = float(envelope["exp"])
            value = envelope["v"]
        except (ValueError, KeyError, TypeError):
            self._delete_quietly(key)
            return None
        if expires <= self._clock():
            self._delete_quietly(key)
            return None
        return Entry(value, expires)

    def remaining(self, entry: Entry) -> float:
        """Seconds until ``entry`` expires."""
        return entry.expires_at - self._clock()

    def put(
        self, kind: str, record_id: str, value: object, ttl: float, *, new: bool = False
    ) -> None:
        """Store ``value`` for ``ttl`` seconds. Raises when storage refuses (e.g. quota).

        An existing record is deleted first (never overwritten, see the module doc);
        ``new=True`` skips that check when the caller knows the id is fresh.
        """
        key = self.key(kind, record_id)
        envelope = {"exp": round(self._clock() + ttl, 3), "v": value}
        data = json.dumps(envelope, separators=(",", ":")).encode()
        if not new and self._storage.exist(key):
            self._delete_quietly(key)
        self._storage.set(key, data)

    def delete(self, kind: str, record_id: str) -> None:
        self._delete_quietly(self.key(kind, record_id))

    # -- buckets: one JSON value per name, rewritten in place ---------------------------------

    def bucket_key(self, kind: str, name: str) -> str:
        return f"{PREFIX}/{self._namespace}/{_safe_segment(kind)}/{_safe_segment(name)}"

    def load(self, kind: str, name: str) -> tuple[bool, object | None]:
        """``(present, value)`` of the bucket; ``value`` is None when it is unreadable JSON.

        ``present`` is False on the daemon's missing-key error — which the daemon also sends
        when its read *failed* (``task.go`` answers every ``Load`` error alike), so a caller
        about to write a bucket it could not read confirms with :meth:`exists` first. Other
        errors are raised.
        """
        try:
            raw = self._storage.get(self.bucket_key(kind, name))
        except Exception as exc:
            if MISSING in str(exc):
                return False, None
            raise
        try:
            return True, json.loads(raw)
        except ValueError:
            return True, None

    def exists(self, kind: str, name: str) -> bool:
        """Whether the bucket is stored (one ``exist``). Raises when storage fails."""
        return bool(self._storage.exist(self.bucket_key(kind, name)))

    def store(self, kind: str, name: str, value: object) -> None:
        """Write the bucket in place (one ``set``). Raises when storage refuses (quota)."""
        data = json.dumps(value, separators=(",", ":")).encode()
        self._storage.set(self.bucket_key(kind, name), data)

    def drop(self, kind: str, name: str) -> None:
        """Delete the bucket (best effort)."""
        self._delete_quietly(self.bucket_key(kind, name))

    def _delete_quietly(self, key: str) -> None:
        try:
            self._storage.delete(key)
        except Exception as exc:  # noqa: BLE001 - already gone, or storage unavailable
            logger.debug("record delete failed: %s", describe_exception(exc))


class Memory[K]:
    """A bounded in-process memory of immutable answers with their expiry (least recently
    stored forgotten first): what the process already knows costs no storage call."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._lock = threading.Lock()
        self._items: OrderedDict[K, Entry] = OrderedDict()

    def entry(self, key: K, now: float) -> Entry | None:
        with self._lock:
            found = self._items.get(key)
        return found if found is not None and found.expires_at > now else None

    def put(self, key: K, value: object, expires_at: float) -> None:
        with self._lock:
            self._items[key] = Entry(value, expires_at)
            self._items.move_to_end(key)
            while len(self._items) > self._capacity:
                self._items.popitem(last=False)

    def drop(self, key: K) -> None:
        with self._lock:
            self._items.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


MISSING = "load data failed"  # the SDK's text for the daemon's missing-key error


@functools.lru_cache(maxsize=256)  # a pure function of the id, computed for every request
def namespace(endpoint_id: str) -> str:
    """The storage segment of an endpoint: injective (see the module doc)."""
    if 0 < len(endpoint_id) <= 64 and all(
        ch.isascii() and (ch.isalnum() or ch in "-_") for ch in endpoint_id
    ):
        return endpoint_id
    return "h" + hashlib.sha256(endpoint_id.encode()).hexdigest()


def _safe_segment(text: str) -> str:
    cleaned = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text)
    return cleaned[:64] or "_"
