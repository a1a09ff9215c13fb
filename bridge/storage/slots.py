"""A bounded map in plugin storage: a fixed number of slots, two choices per id.

Dify's plugin storage cannot list keys, so records nobody reads again could never be
found to delete, and the quota would fill. A :class:`SlotStore` keeps at most ``slots``
records per kind and endpoint: each id may live in one of two slots (two hashes of the
id); a new id takes an empty or expired slot, or else the one whose record expires first.
Storage is therefore bounded by ``slots × record size`` whatever the traffic, and an
unexpired record is evicted only when both of its slots hold newer ones — rare while
fewer than about half the slots are in use. Records hold a digest of the id, never the id
itself (external user ids stay out of storage).

:class:`BucketStore` is the layout the bridge's own records use (issue #14): one storage
``get`` per lookup and one ``get`` + ``set`` per change, where a two-choice slot costs up to
two ``get`` per lookup and four calls per change. :class:`SlotStore` stays for records
written once and never rewritten.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bridge.errors import describe_exception
from bridge.storage.records import Entry, Records


class SlotStore:
    def __init__(self, records: Records, kind: str, *, slots: int, ttl: float) -> None:
        self._records = records
        self._kind = kind
        self._slots = slots
        self.ttl = ttl

    def _candidates(self, item_id: str) -> tuple[str, str]:
        digest = hashlib.sha256(item_id.encode()).digest()  # slots from bytes 0-15
        first = int.from_bytes(digest[:8], "big") % self._slots
        second = int.from_bytes(digest[8:16], "big") % self._slots
        if second == first:
            second = (first + 1) % self._slots
        return f"{first:06d}", f"{second:06d}"

    def _read(self, slot: str) -> Entry | None:
        return self._records.entry(self._kind, slot)

    def entry(self, item_id: str) -> Entry | None:
        """The value stored for ``item_id`` with its expiry time, or None."""
        for slot in self._candidates(item_id):
            entry = self._read(slot)
            if entry is not None and _holds(entry, _tag(item_id)):
                return Entry(entry.value["v"], entry.expires_at)  # type: ignore[index]
        return None

    def get(self, item_id: str) -> Any | None:
        """The value stored for ``item_id``, or None."""
        entry = self.entry(item_id)
        return None if entry is None else entry.value

    def remaining(self, entry: Entry) -> float:
        return self._records.remaining(entry)

    def put(self, item_id: str, value: Any) -> None:
        """Store ``value`` for ``item_id``; if both slots are taken, evict the sooner-expiring."""
        slots, tag = self._candidates(item_id), _tag(item_id)
        first = self._read(slots[0])
        # the second slot is read unless the first already holds this id: an id must never
        # be left behind in one slot while written to the other
        entries = (
            [first] if first is not None and _holds(first, tag) else [first, self._read(slots[1])]
        )
        holding = [i for i, e in enumerate(entries) if e is not None and _holds(e, tag)]
        empty = [i for i, e in enumerate(entries) if e is None]
        if holding:
            chosen = holding[0]
        elif empty:
            chosen = empty[0]
        else:
            chosen = min((0, 1), key=lambda i: entries[i].expires_at)  # type: ignore[union-attr]
        self._records.put(
            self._kind, slots[chosen], {"id": tag, "v": value}, self.ttl,
            new=entries[chosen] is None,
        )  # fmt: skip

    def delete(self, item_id: str) -> None:
        for slot in self._candidates(item_id):
            entry = self._read(slot)
            if entry is not None and _holds(entry, _tag(item_id)):
                self._records.delete(self._kind, slot)


def _tag(item_id: str) -> str:
    """What a record stores to recognise its id: bytes 16-31 of its SHA-256, in hex."""
    return hashlib.sha256(item_id.encode()).digest()[16:32].hex()


def _holds(entry: Entry, tag: str) -> bool:
    return isinstance(entry.value, dict) and entry.value.get("id") == tag


# -- buckets ---------------------------------------------------------------------------------


class StorageFull(Exception):
    """No room for a new record without evicting an unexpired one (or storage refused)."""


class BucketStore:
    """A bounded map in plugin storage: ``buckets`` values of at most ``capacity`` records.

    Each id hashes to one bucket; the bucket is one storage value holding its records as
    ``[tag, expires_at, value]`` triples, so a lookup is one ``get`` and a change is that
    ``get`` plus one ``set`` (written in place, see :mod:`bridge.storage.records`). Expired records
    are dropped whenever their bucket is written. When a bucket is full of unexpired
    records, a new id either fails with :class:`StorageFull` (``evict=False``: ownership
    records are never evicted to make room for someone else's) or replaces the record that
    expires first (``evict=True``: records whose loss only costs a re-run or a new
    conversation). Storage is bounded by ``buckets × capacity × record size``.

    Read-modify-write (:meth:`update`) is serialised per bucket within the process; Dify's
    storage has no compare-and-set, so two plugin instances writing one bucket at the same
    moment could lose one change (Dify's local runtime runs one process). A bucket that reads
    as missing is confirmed with one ``exist`` before it is written: the daemon answers a
    failed read exactly like a missing key.
    """

    def __init__(
        self,
        records: Records,
        kind: str,
        *,
        buckets: int,
        capacity: int,
        ttl: float,
        evict: bool = False,
    ) -> None:
        self._records = records
        self.kind = kind
        self._buckets = buckets
        self._capacity = capacity
        self.ttl = ttl
        self._evict = evict

    # -- addressing ------------------------------------------------------------------------

    def bucket_of(self, item_id: str) -> str:
        digest = hashlib.sha256(item_id.encode()).digest()
        return f"b{int.from_bytes(digest[:8], 'big') % self._buckets:05d}"

    @staticmethod
    def tag(item_id: str) -> str:
        """What a record stores to recognise its id: 80 bits of its SHA-256, never the id."""
        return hashlib.sha256(item_id.encode()).digest()[16:26].hex()

    # -- reading ---------------------------------------------------------------------------

    def read(self, bucket: str) -> Bucket:
        """The bucket's unexpired records (one ``get``)."""
        generation = _GENERATIONS.get(self._key(bucket))
        present, value = self._records.load(self.kind, bucket)
        return Bucket.parse(value, self._records.now(), read=present, generation=generation)

    def _key(self, bucket: str) -> tuple[str, str, str]:
        return (self._records.namespace, self.kind, bucket)

    def entry(self, item_id: str) -> Entry | None:
        """The value stored for ``item_id`` with its expiry time, or None (one ``get``)."""
        return self.read(self.bucket_of(item_id)).find(self.tag(item_id))

    def get(self, item_id: str) -> Any | None:
        entry = self.entry(item_id)
        return None if entry is None else entry.value

    def remaining(self, entry: Entry) -> float:
        return self._records.remaining(entry)

    # -- writing ---------------------------------------------------------------------------

    def put(
        self, item_id: str, value: Any, *, ttl: float | None = None, known: Bucket | None = None
    ) -> None:
        """Store ``value`` for ``item_id`` (one ``get`` + one ``set``; only the ``set`` when
        ``known`` is a current read of its bucket, see :meth:`update`).

        Raises :class:`StorageFull` when the bucket has no room (``evict=False``) or storage
        refuses the write; nothing is then changed that the caller relied on.
        """
        tag, expires = self.tag(item_id), self.expiry(ttl)

        def change(rows: Bucket) -> Bucket:
            return rows.with_record(tag, value, expires)

        self.update(self.bucket_of(item_id), change, known)

    def lookup(self, item_id: str) -> tuple[Any | None, Bucket]:
        """The value stored for ``item_id`` and the bucket read to find it (one ``get``)."""
        bucket = self.read(self.bucket_of(item_id))
        entry = bucket.find(self.tag(item_id))
        return (None if entry is None else entry.value), bucket

    def delete(self, item_id: str) -> None:
        tag = self.tag(item_id)
        self.update(self.bucket_of(item_id), lambda rows: rows.without(tag))

    def update(
        self, bucket: str, change: Callable[[Bucket], Bucket], known: Bucket | None = None
    ) -> Bucket:
        """Read, change and write ``bucket`` under its in-process lock; returns what is stored.

        ``known`` — this request's earlier read of the bucket — is reused (saving the ``get``)
        when no write by this process came in between; a write by another plugin instance in
        the meantime would be lost (Dify's storage has no compare-and-set).
        """
        key = self._key(bucket)
        with _lock(*key):
            fresh = known is not None and known.generation == _GENERATIONS.get(key)
            current = known if fresh and known is not None else self.read(bucket)
            updated = change(current)
            if updated.rows == current.rows:
                return current  # nothing changed: no write
            self.write(bucket, updated)
            return Bucket(updated.rows, True, _GENERATIONS.bump(key))

    def expiry(self, ttl: float | None = None) -> float:
        """When a record written now expires (whole seconds)."""
        return round(self._records.now() + (self.ttl if ttl is None else ttl))

    def write(self, bucket: str, records: Bucket) -> None:
        """Store ``records`` as the bucket's content, enforcing capacity: one ``set`` (plus
        one ``exist`` when the bucket read as missing, the first write of a bucket)."""
        rows = records.rows
        while len(rows) > self._capacity:
            if not self._evict:
                raise StorageFull(f"{self.kind} bucket full")
            newest = rows[-1]
            rows = [*sorted(rows[:-1], key=lambda row: row[1])[1:], newest]
        if not records.read and self._call(self._records.exists, bucket):
            # "missing" was a failed read: writing would drop the records it holds
            raise StorageFull(f"{self.kind} bucket could not be read")
        if rows:
            self._call(self._records.store, bucket, {"r": rows})
        else:
            self._records.drop(self.kind, bucket)

    def _call(self, operation: Callable[..., Any], bucket: str, *args: Any) -> Any:
        """A storage call; any failure (quota, daemon) becomes :class:`StorageFull`."""
        try:
            return operation(self.kind, bucket, *args)
        except Exception as exc:  # noqa: BLE001 - the caller decides what a refusal means
            raise StorageFull(f"{self.kind} storage refused: {describe_exception(exc)}") from None


@dataclass(frozen=True, slots=True)
class Bucket:
    """The unexpired records of one bucket, oldest write first."""

    rows: list[list[Any]]
    read: bool = True  # False: storage answered "missing", which may hide a failed read
    generation: int = 0  # how many times this process had written the bucket when read

    @classmethod
    def parse(cls, value: object, now: float, *, read: bool = True, generation: int = 0) -> Bucket:
        rows = value.get("r") if isinstance(value, dict) else None
        if not isinstance(rows, list):
            return cls([], read, generation)
        kept = [
            row
            for row in rows
            if isinstance(row, list)
            and len(row) == 3
            and isinstance(row[0], str)
            and isinstance(row[1], int | float)
            and row[1] > now
        ]
        return cls(kept, read, generation)

    def find(self, tag: str) -> Entry | None:
        for row in self.rows:
            if row[0] == tag:
                return Entry(row[2], float(row[1]))
        return None

    def without(self, tag: str) -> Bucket:
        return Bucket([row for row in self.rows if row[0] != tag], self.read, self.generation)

    def with_record(self, tag: str, value: Any, expires_at: float) -> Bucket:
        rows = [*self.without(tag).rows, [tag, expires_at, value]]
        return Bucket(rows, self.read, self.generation)


class _Generations:
    """How many times this process wrote each bucket, so a read can be known current."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str, str], int] = {}

    def get(self, key: tuple[str, str, str]) -> int:
        with self._lock:
            return self._counts.get(key, 0)

    def bump(self, key: tuple[str, str, str]) -> int:
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1
            return self._counts[key]


_GENERATIONS = _Generations()
_LOCKS = [threading.Lock() for _ in range(64)]


def _lock(*parts: str) -> threading.Lock:
    digest = hashlib.sha256("\x00".join(parts).encode()).digest()
    return _LOCKS[digest[0] % len(_LOCKS)]
