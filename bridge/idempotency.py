"""Idempotent webhook deliveries (SPEC §6).

A delivery id — the provider's (``X-GitHub-Delivery``, Slack ``event_id``, ``webhook-id``…)
or an ``Idempotency-Key`` header — that was already answered gets the first response again,
with ``Idempotent-Replay: true``, and the app does not run again.

Guarantees, honestly: Dify's storage has no compare-and-set, so two copies of a delivery
arriving at the same moment could both run. Within one plugin process (Dify's local
runtime runs one) concurrent copies are single-flighted: the second waits for the first
and replays its response. Across plugin instances (serverless) a copy that arrives before
the first has finished may run again. Only successes and deterministic failures (400, 404,
413, 415, 422) are remembered; after a 429 or 5xx the sender's retry runs again. A key is
bound to the request body that first used it: the same key with another body is refused
with 422, never answered with someone else's response. Ids are namespaced by their source
(the provider's id per scheme, or the ``Idempotency-Key`` header). Records expire after
24 h and live in a :class:`~bridge.slots.SlotStore` of ``SLOTS`` records per endpoint, so
storage is bounded (bodies above ``MAX_BODY`` are not kept; their replay says so).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from bridge.records import Records
from bridge.singleflight import SingleFlight
from bridge.slots import SlotStore

KIND = "idem"
TTL = 24 * 3600.0
SLOTS = 2048
MAX_BODY = 2048  # bytes kept for replay; 2048 slots × ~2.8 KB ≈ 5.7 MB at most per endpoint
REPLAY_HEADER = "Idempotent-Replay"
FLIGHTS = SingleFlight(ttl=0)  # joins concurrent copies only; storage remembers for 24 h


REMEMBERED_ERRORS = frozenset({400, 404, 413, 415, 422})  # a retry would fail alike


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    content_type: str
    body: bytes
    fingerprint: str = ""  # digest of the request body that produced it

    def to_record(self) -> dict[str, object]:
        kept = self.body if len(self.body) <= MAX_BODY else b""
        return {
            "s": self.status,
            "t": self.content_type,
            "b": base64.b64encode(kept).decode(),
            "cut": len(self.body) > MAX_BODY,
            "f": self.fingerprint,
        }

    @classmethod
    def from_record(cls, record: object) -> StoredResponse | None:
        if not isinstance(record, dict):
            return None
        try:
            body = base64.b64decode(str(record.get("b", "")))
            status = int(record["s"])
        except (KeyError, ValueError, TypeError):
            return None
        fingerprint = str(record.get("f") or "")
        if record.get("cut"):
            body = b'{"replayed": true, "note": "the original response was too large to keep"}'
            return cls(status, "application/json", body, fingerprint)
        return cls(status, str(record.get("t") or "application/json"), body, fingerprint)


class Deliveries:
    def __init__(self, records: Records) -> None:
        self._store = SlotStore(records, KIND, slots=SLOTS, ttl=TTL)

    def replay(self, delivery_id: str) -> StoredResponse | None:
        return StoredResponse.from_record(self._store.get(delivery_id))

    def remember(self, delivery_id: str, response: StoredResponse) -> None:
        """Keep successes and deterministic failures; not 429/5xx (a retry may succeed)."""
        if 200 <= response.status < 300 or response.status in REMEMBERED_ERRORS:
            self._store.put(delivery_id, response.to_record())
