"""Stored Responses-API responses: id → owner, Dify conversation and (optionally) the object.

The Responses face (:mod:`bridge.openai_responses`) keeps its server-side state through
this module only, so the storage layer under it can change without touching the face:

- :func:`new_id` makes a ``resp_…`` id (192 random bits: the id is also a capability);
- :meth:`ResponseStore.find` is **one storage read**: the record of an id lives in exactly
  one slot (a hash of the id), holding a tag of the id, the SHA-256 digest of its ``user``,
  its Dify conversation and, unless the caller sent ``store: false``, the response object;
- :meth:`ResponseStore.save` is **one record write** per new response (today's
  :meth:`~bridge.records.Records.put` checks the slot first: records are never
  overwritten, see :mod:`bridge.records`).

Storage stays bounded: at most ``SLOTS`` records per endpoint of at most
``MAX_RECORD_BYTES`` each; a new response takes its slot from whatever older record held it
(ids are random, so slots fill evenly). A response whose object would not fit is kept for
``previous_response_id`` but not for ``GET`` (its record says so). Records live ``TTL``.
External user ids never reach storage, only their digests.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any

from bridge.records import Records

KIND = "resp"
TTL = 30 * 24 * 3600.0  # OpenAI keeps stored responses 30 days
SLOTS = 2048
MAX_RECORD_BYTES = 4096  # so at most SLOTS × 4 KiB = 8 MiB per endpoint
ID_PREFIX = "resp_"
_ID_HEX = 48


def new_id() -> str:
    return ID_PREFIX + secrets.token_hex(_ID_HEX // 2)


def is_response_id(text: str) -> bool:
    """Whether ``text`` has the shape of an id :func:`new_id` makes (no storage read)."""
    hex_part = text[len(ID_PREFIX) :]
    return (
        text.startswith(ID_PREFIX)
        and len(hex_part) == _ID_HEX
        and all(c in "0123456789abcdef" for c in hex_part)
    )


@dataclass(frozen=True, slots=True)
class StoredResponse:
    conversation_id: str  # "" for workflow and completion apps
    body: dict[str, Any] | None  # what the face kept to answer GET; None: store false / too big
    too_large: bool = False  # the object was not kept because it exceeded MAX_RECORD_BYTES


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class ResponseStore:
    """The responses of one endpoint."""

    def __init__(self, records: Records) -> None:
        self._records = records

    @staticmethod
    def _slot(response_id: str) -> str:
        digest = hashlib.sha256(response_id.encode()).digest()
        return f"{int.from_bytes(digest[:8], 'big') % SLOTS:06d}"

    @staticmethod
    def _tag(response_id: str) -> str:
        return hashlib.sha256(response_id.encode()).digest()[8:24].hex()

    def find(self, response_id: str, user: str | None) -> StoredResponse | None:
        """The response ``response_id`` if this endpoint made it (for ``user``, unless None)."""
        if not is_response_id(response_id):
            return None
        value = self._records.get(KIND, self._slot(response_id))
        if not isinstance(value, dict) or value.get("id") != self._tag(response_id):
            return None
        if user is not None and value.get("u") != _digest(user)[:32]:
            return None
        body = value.get("r")
        return StoredResponse(
            conversation_id=str(value.get("c") or ""),
            body=body if isinstance(body, dict) else None,
            too_large=bool(value.get("big")),
        )

    def save(
        self, response_id: str, user: str, conversation_id: str, body: dict[str, Any] | None
    ) -> None:
        """Record a new response; ``body`` None keeps only its conversation. Raises on refusal."""
        value: dict[str, Any] = {
            "id": self._tag(response_id),
            "u": _digest(user)[:32],
            "c": conversation_id,
            "r": body,
        }
        if body is not None and len(json.dumps(value).encode()) > MAX_RECORD_BYTES:
            value.update(r=None, big=True)
        self._records.put(KIND, self._slot(response_id), value, TTL)
