"""Idempotent webhook deliveries (SPEC §6).

A delivery id — the provider's (``X-GitHub-Delivery``, Slack ``event_id``, ``webhook-id``…)
or an ``Idempotency-Key`` header — that was already answered gets the first response again,
with ``Idempotent-Replay: true``, and the app does not run again.

Guarantees, honestly: Dify's storage has no compare-and-set, so two copies of a delivery
arriving at the same moment could both run. Within one plugin process (Dify's local
runtime runs one) concurrent copies are single-flighted: the second waits for the first
and replays its response. Across plugin instances (serverless) a copy that arrives before
the first has finished may run again. Only successes and deterministic failures (400, 404,
413, 415, 422) are remembered; after a 429 or 5xx the sender's retry runs again.

What identifies a delivery (issue #10 item 7): a *provider's* delivery id names one
delivery whatever the body of its retries (LINE sets ``deliveryContext.isRedelivery``,
Slack adds ``X-Slack-Retry-Num``, every signed retry carries a new signature or timestamp),
so it is replayed regardless of the body. An ``Idempotency-Key`` is the caller's word: it is
bound to the request that first used it — its body and what the endpoint's mappings read
from headers and query (:func:`fingerprint`) — and another request under the same key is
refused with 422, never answered with someone else's response.

Ids are namespaced by their source (the provider's id per scheme, Meta's signed body, or the
header). Records expire after ``TTL`` (24 h): that is also the bound on replaying a captured
delivery of a scheme that signs no timestamp — a Meta delivery (identified by its signed
body) or a GitHub, GitLab or Shopify one under its own delivery id is answered from the
record within 24 h and runs nothing; later, or under a forged new delivery header (theirs is
not signed), it runs again, so rotate a leaked secret. Slack, Stripe, Standard Webhooks and
Discord refuse replays after 300 s by their signed timestamp.

Layout: one record per slot, ``SLOTS`` slots per endpoint, the slot chosen by a hash of the
id: a lookup is one ``get``; a new record one ``set`` (plus a ``delete`` of the slot's older
record, so the daemon's quota is never charged twice for one key). A new delivery takes its
slot even from an unexpired record of another delivery (whose retry would then run again):
deliveries are not ownership. Bodies above ``MAX_BODY`` are not kept; their replay says so.
Answers this process gave are also kept in memory (:data:`KNOWN`, bounded, same expiry), so
a retry reaching the process that answered costs no storage call.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from bridge.singleflight import SingleFlight
from bridge.storage.records import Entry, Memory, Records

KIND = "idem"
TTL = 24 * 3600.0
SLOTS = 512
MAX_BODY = 1024  # bytes kept for replay: a record ≤ ~1.6 KB, 512 slots ≤ 820 KB per endpoint
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


def fingerprint(body: bytes, seen: object = None) -> str:
    """Digest of a request for ``Idempotency-Key`` binding: its body and ``seen`` — what the
    endpoint's mappings took from it (inputs, query, user, conversation), which covers every
    header and query parameter they read."""
    digest = hashlib.sha256(body)
    if seen is not None:
        digest.update(b"\x00" + json.dumps(seen, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:32]


KNOWN: Memory[tuple[str, str]] = Memory(2048)  # (namespace, delivery) → response


class Deliveries:
    def __init__(self, records: Records) -> None:
        self._records = records
        self._occupied: dict[str, bool] = {}  # slot → held a record when this request read it

    def _slot(self, delivery_id: str) -> tuple[str, str]:
        digest = hashlib.sha256(delivery_id.encode()).digest()
        return f"{int.from_bytes(digest[:8], 'big') % SLOTS:05d}", digest[16:32].hex()

    def known(self, delivery_id: str) -> StoredResponse | None:
        """The response this process stored for ``delivery_id`` (no storage call)."""
        known = KNOWN.entry((self._records.namespace, delivery_id), self._records.now())
        return (
            known.value if known is not None and isinstance(known.value, StoredResponse) else None
        )

    def replay(self, delivery_id: str) -> StoredResponse | None:
        """The stored response: from memory, else one ``get``."""
        known = self.known(delivery_id)
        if known is not None:
            return known
        slot, tag = self._slot(delivery_id)
        entry: Entry | None = self._records.entry(KIND, slot)  # an expired record is deleted
        self._occupied[slot] = entry is not None
        record: Any = entry.value if entry is not None else None
        if not isinstance(record, dict) or record.get("id") != tag:
            return None
        return StoredResponse.from_record(record.get("v"))

    def remember(self, delivery_id: str, response: StoredResponse) -> None:
        """Keep successes and deterministic failures; not 429/5xx (a retry may succeed)."""
        if not (200 <= response.status < 300 or response.status in REMEMBERED_ERRORS):
            return
        slot, tag = self._slot(delivery_id)
        occupied = self._occupied.get(slot)
        if occupied:
            self._records.delete(KIND, slot)
        self._records.put(
            KIND, slot, {"id": tag, "v": response.to_record()}, TTL, new=occupied is not None
        )
        kept = StoredResponse.from_record(response.to_record())
        if kept is not None:
            KNOWN.put((self._records.namespace, delivery_id), kept, self._records.now() + TTL)
