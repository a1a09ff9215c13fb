"""Conversation ownership for the Service-API facade (SPEC §4).

Every plugin call to an app runs as the same Dify end user, so Dify itself cannot keep
one caller out of another's conversation. The bridge records, per endpoint, which
``user`` created each conversation (as a SHA-256 digest, not the id itself) and refuses
any ``conversation_id`` it did not create for that user — without invoking the app.

Records last 30 days, are renewed when used in their second half, and live in a bounded
:class:`~bridge.storage.slots.BucketStore` (``BUCKETS`` × ``CAPACITY`` per endpoint). An unexpired
record is never evicted: when its bucket is full, a new conversation fails with 503
``storage_full`` (after the app ran, the caller is told; the conversation is simply never
reachable) instead of silently dropping someone's ownership.

An owner never changes, so the process remembers what it read or wrote
(:data:`KNOWN`, bounded): a continued conversation this process has seen costs no storage
call at all. Only :meth:`Conversations.forget` (Dify no longer knows the conversation)
removes a record, and it clears the memory too.
"""

from __future__ import annotations

import hashlib
import logging

from bridge.errors import BridgeError, describe_exception, not_found
from bridge.storage.records import Memory, Records
from bridge.storage.slots import BucketStore, StorageFull

logger = logging.getLogger(__name__)

KIND = "conv"
TTL = 30 * 24 * 3600.0
BUCKETS = 256
CAPACITY = 16  # records of ~63 B: a bucket ≤ 1.1 KB; 256 buckets ≤ 270 KB per endpoint
SLOTS = BUCKETS * CAPACITY  # records per endpoint at most (the name 0.5.0 used)
NOT_EXISTS = "Conversation Not Exists."


def storage_full(what: str = "conversation") -> BridgeError:
    return BridgeError(
        503,
        "storage_full",
        f"The {what} could not be recorded: App Bridge's storage for this endpoint is full "
        "or unavailable. Try again later.",
    )


KNOWN: Memory[tuple[str, str]] = Memory(8192)  # (namespace, conversation) → owner


def _owner(user: str) -> str:
    return hashlib.sha256(user.encode()).hexdigest()[:24]


class Conversations:
    def __init__(self, records: Records) -> None:
        self._records = records
        self._store = BucketStore(records, KIND, buckets=BUCKETS, capacity=CAPACITY, ttl=TTL)

    def _known_key(self, conversation_id: str) -> tuple[str, str]:
        return (self._records.namespace, conversation_id)

    def check(self, conversation_id: str, user: str) -> None:
        """Raise 404 ``not_found`` unless ``user`` created ``conversation_id`` here.

        No storage call when this process knows the owner and the record is in its first
        half of life; otherwise one ``get`` (plus a renewal write in the second half).
        """
        owner, key = _owner(user), self._known_key(conversation_id)
        now = self._records.now()
        known = KNOWN.entry(key, now)
        if known is not None:
            if known.value != owner:
                raise not_found(NOT_EXISTS)
            if known.expires_at - now >= TTL / 2:
                return
        entry = self._store.entry(conversation_id)
        if entry is None or entry.value != owner:
            raise not_found(NOT_EXISTS)
        KNOWN.put(key, owner, entry.expires_at)
        if self._store.remaining(entry) < TTL / 2:
            try:
                self._put(conversation_id, owner)
            except StorageFull as exc:  # renewal is best effort; the check passed
                logger.warning("could not renew conversation record: %s", describe_exception(exc))

    def remember(self, conversation_id: str, user: str) -> None:
        """Record ``user`` as the owner (one ``get`` + one ``set``).

        Raises :class:`~bridge.storage.slots.StorageFull` when the record cannot be kept.
        """
        self._put(conversation_id, _owner(user))

    def _put(self, conversation_id: str, owner: str) -> None:
        self._store.put(conversation_id, owner)
        KNOWN.put(self._known_key(conversation_id), owner, self._records.now() + TTL)

    def forget(self, conversation_id: str) -> None:
        KNOWN.drop(self._known_key(conversation_id))
        try:
            self._store.delete(conversation_id)
        except Exception as exc:  # noqa: BLE001 - the record then expires on its own
            logger.warning("could not forget conversation record: %s", describe_exception(exc))
