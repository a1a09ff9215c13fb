"""A bounded map in plugin storage: a fixed number of slots, two choices per id.

Dify's plugin storage cannot list keys, so records nobody reads again could never be
found to delete, and the quota would fill. A :class:`SlotStore` keeps at most ``slots``
records per kind and endpoint: each id may live in one of two slots (two hashes of the
id); a new id takes an empty or expired slot, or else the one whose record expires first.
Storage is therefore bounded by ``slots × record size`` whatever the traffic, and an
unexpired record is evicted only when both of its slots hold newer ones — rare while
fewer than about half the slots are in use. Records hold a digest of the id, never the id
itself (external user ids stay out of storage).
"""

from __future__ import annotations

import hashlib
from typing import Any

from bridge.records import Entry, Records


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
