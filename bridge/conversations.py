"""Conversation ownership for the Service-API facade (SPEC §4).

Every plugin call to an app runs as the same Dify end user, so Dify itself cannot keep
one caller out of another's conversation. The bridge records, per endpoint, which
``user`` created each conversation (as a SHA-256 digest, not the id itself) and refuses
any ``conversation_id`` it did not create for that user — without invoking the app.
Records last 30 days and are renewed when used in their second half.
"""

from __future__ import annotations

import hashlib
import logging

from bridge.errors import describe_exception, not_found
from bridge.records import Records

logger = logging.getLogger(__name__)

KIND = "conv"
TTL = 30 * 24 * 3600.0
NOT_EXISTS = "Conversation Not Exists."


def _owner(user: str) -> str:
    return hashlib.sha256(user.encode()).hexdigest()[:32]


class Conversations:
    def __init__(self, records: Records) -> None:
        self._records = records

    def check(self, conversation_id: str, user: str) -> None:
        """Raise 404 ``not_found`` unless ``user`` created ``conversation_id`` here."""
        entry = self._records.entry(KIND, conversation_id)
        if entry is None or not isinstance(entry.value, dict):
            raise not_found(NOT_EXISTS)
        if entry.value.get("owner") != _owner(user):
            raise not_found(NOT_EXISTS)
        if self._records.remaining(entry) < TTL / 2:
            try:
                self._records.put(KIND, conversation_id, entry.value, TTL)
            except Exception as exc:  # noqa: BLE001 - renewal is best effort; the check passed
                logger.warning("could not renew conversation record: %s", describe_exception(exc))

    def remember(self, conversation_id: str, user: str) -> None:
        self._records.put(KIND, conversation_id, {"owner": _owner(user)}, TTL, new=True)

    def forget(self, conversation_id: str) -> None:
        self._records.delete(KIND, conversation_id)
