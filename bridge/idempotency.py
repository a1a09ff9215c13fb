"""Idempotent webhook deliveries (SPEC §6).

A delivery id — the provider's (``X-GitHub-Delivery``, Slack ``event_id``, ``webhook-id``…)
or an ``Idempotency-Key`` header — that was already answered gets the first response again,
with ``Idempotent-Replay: true``, and the app does not run again.

Guarantees, honestly: Dify's storage has no compare-and-set, so two copies of a delivery
arriving at the same moment could both run. Within one plugin process (Dify's local
runtime runs one) concurrent copies are single-flighted: the second waits for the first
and replays its response. Across plugin instances (serverless) a copy that arrives before
the first has finished may run again. Responses of 5xx are not remembered (the sender's
retry should run again). Records expire after 24 h and live in a
:class:`~bridge.slots.SlotStore` of ``SLOTS`` records per endpoint, so storage is bounded
(bodies above ``MAX_BODY`` are not kept; their replay says so).
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


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    content_type: str
    body: bytes

    def to_record(self) -> dict[str, object]:
        kept = self.body if len(self.body) <= MAX_BODY else b""
        return {
            "s": self.status,
            "t": self.content_type,
            "b": base64.b64encode(kept).decode(),
            "cut": len(self.body) > MAX_BODY,
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
        if record.get("cut"):
            body = b'{"replayed": true, "note": "the original response was too large to keep"}'
            return cls(status, "application/json", body)
        return cls(status, str(record.get("t") or "application/json"), body)


class Deliveries:
    def __init__(self, records: Records) -> None:
        self._store = SlotStore(records, KIND, slots=SLOTS, ttl=TTL)

    def replay(self, delivery_id: str) -> StoredResponse | None:
        return StoredResponse.from_record(self._store.get(delivery_id))

    def remember(self, delivery_id: str, response: StoredResponse) -> None:
        if response.status < 500:
            self._store.put(delivery_id, response.to_record())
