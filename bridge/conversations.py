"""Conversation ownership for the Service-API facade (SPEC §4).

Every plugin call to an app runs as the same Dify end user, so Dify itself cannot keep
one caller out of another's conversation. The bridge records, per endpoint, which
``user`` created each conversation (as a SHA-256 digest, not the id itself) and refuses
any ``conversation_id`` it did not create for that user — without invoking the app.
Records last 30 days, are renewed when used in their second half, and live in a bounded
:class:`~bridge.slots.SlotStore` of ``SLOTS`` records per endpoint.
"""

from __future__ import annotations

import hashlib
import logging

from bridge.errors import describe_exception, not_found
from bridge.records import Records
from bridge.slots import SlotStore

logger = logging.getLogger(__name__)

KIND = "conv"
TTL = 30 * 24 * 3600.0
SLOTS = 8192  # × ~150 B per record ≈ 1.2 MB per endpoint at most
NOT_EXISTS = "Conversation Not Exists."


def _owner(user: str) -> str:
    return hashlib.sha256(user.encode()).hexdigest()[:32]


class Conversations:
    def __init__(self, records: Records) -> None:
        self._store = SlotStore(records, KIND, slots=SLOTS, ttl=TTL)

    def check(self, conversation_id: str, user: str) -> None:
        """Raise 404 ``not_found`` unless ``user`` created ``conversation_id`` here."""
        entry = self._store.entry(conversation_id)
        if entry is None or entry.value != _owner(user):
            raise not_found(NOT_EXISTS)
        if self._store.remaining(entry) < TTL / 2:
            try:
                self._store.put(conversation_id, entry.value)
            except Exception as exc:  # noqa: BLE001 - renewal is best effort; the check passed
                logger.warning("could not renew conversation record: %s", describe_exception(exc))

    def remember(self, conversation_id: str, user: str) -> None:
        self._store.put(conversation_id, _owner(user))

    def forget(self, conversation_id: str) -> None:
        self._store.delete(conversation_id)
