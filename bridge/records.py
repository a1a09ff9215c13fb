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

Keys are ``ab/<endpoint_id>/<kind>/<sha256(id)[:40]>``: bounded length whatever the id,
and no caller-controlled characters reach the storage path.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
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
        self._namespace = _safe_segment(endpoint_id or "default")
        self._clock = clock

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

    def _delete_quietly(self, key: str) -> None:
        try:
            self._storage.delete(key)
        except Exception as exc:  # noqa: BLE001 - already gone, or storage unavailable
            logger.debug("record delete failed: %s", describe_exception(exc))


def _safe_segment(text: str) -> str:
    cleaned = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text)
    return cleaned[:64] or "_"
