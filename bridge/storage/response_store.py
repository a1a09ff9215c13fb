"""Stored Responses-API responses: id → owner, Dify conversation and (optionally) the object.

The Responses face (:mod:`bridge.protocols.openai_responses`) keeps its server-side state through
this module only, so the storage layer under it can change without touching the face.

A Dify conversation is linear, so the store keeps **one record per conversation**, in one
slot of a fixed table: the first response of a conversation takes a random slot, and every
later response's id names the same slot (its first hex digits), so

- :meth:`ResponseStore.find` is **one storage read** for any response of the chain;
- :meth:`ResponseStore.save` is **one record write** per response (today's
  :meth:`~bridge.storage.records.Records.put` checks or clears the slot first: records are never
  overwritten, see :mod:`bridge.storage.records`);
- storage is bounded by ``SLOTS`` records of at most ``MAX_RECORD_BYTES`` per endpoint, and
  a conversation's record is replaced only by a *new conversation* landing on its slot,
  never by later turns of other conversations.

A record holds the tags (digests) of the conversation's latest ``CHAIN`` response ids, the
SHA-256 digest of the ``user`` that owns it, the Dify conversation id and, unless the caller
sent ``store: false`` or it would not fit, what the face needs to answer ``GET`` for the
latest response. Workflow and completion apps keep no conversation: each response is its
own chain. Records live ``TTL`` from their last write. External user ids never reach
storage, only their digests.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from bridge.storage.records import Records

KIND = "resp"
TTL = 30 * 24 * 3600.0  # OpenAI keeps stored responses 30 days
SLOTS = 512  # conversations kept per endpoint (a new one may replace the oldest's slot)
CHAIN = 32  # response ids of one conversation that still continue it
MAX_RECORD_BYTES = 2048  # so at most SLOTS × 2 KiB = 1 MiB per endpoint (docs/storage.md)
ID_PREFIX = "resp_"
_ID_HEX = 48
_SLOT_HEX = 4  # the first hex digits of an id's random part name its slot


def new_id(continuing: str | None = None) -> str:
    """A fresh ``resp_…`` id: 176 random bits (the id is also a capability), in the slot of
    ``continuing`` (the response it follows in a conversation) or in a random one."""
    slot = continuing[len(ID_PREFIX) :][:_SLOT_HEX] if continuing else secrets.token_hex(2)
    return ID_PREFIX + slot + secrets.token_hex((_ID_HEX - _SLOT_HEX) // 2)


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
    response_id: str
    conversation_id: str  # "" for workflow and completion apps
    latest: bool  # the newest response of its conversation
    body: dict[str, Any] | None  # what the face kept for GET (latest only; None: not kept)
    too_large: bool = False  # the body was not kept because it exceeded MAX_RECORD_BYTES
    chain: tuple[str, ...] = field(default=(), repr=False)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _tag(response_id: str) -> str:
    return hashlib.sha256(response_id.encode()).hexdigest()[32:48]


def _slot(response_id: str) -> str:
    return f"{int(response_id[len(ID_PREFIX) :][:_SLOT_HEX], 16) % SLOTS:06d}"


class ResponseStore:
    """The responses of one endpoint."""

    def __init__(self, records: Records) -> None:
        self._records = records

    def find(self, response_id: str, user: str | None) -> StoredResponse | None:
        """Response ``response_id`` if this endpoint made it (for ``user``, unless None)."""
        if not is_response_id(response_id):
            return None
        value = self._records.get(KIND, _slot(response_id))
        if not isinstance(value, dict) or not isinstance(value.get("h"), list):
            return None
        chain, tag = tuple(str(t) for t in value["h"]), _tag(response_id)
        if tag not in chain or (user is not None and value.get("u") != _digest(user)):
            return None
        latest = chain[-1] == tag
        body = value.get("r") if latest else None
        return StoredResponse(
            response_id=response_id,
            conversation_id=str(value.get("c") or ""),
            latest=latest,
            body=body if isinstance(body, dict) else None,
            too_large=latest and bool(value.get("big")),
            chain=chain,
        )

    def save(
        self,
        response_id: str,
        user: str,
        conversation_id: str,
        body: dict[str, Any] | None,
        *,
        previous: StoredResponse | None = None,
    ) -> None:
        """Record a new response (``previous``: the one it follows, from :meth:`find`).

        ``body`` None keeps only continuity. Raises when storage refuses the write.
        """
        chain = [*previous.chain, _tag(response_id)][-CHAIN:] if previous else [_tag(response_id)]
        value: dict[str, Any] = {"h": chain, "u": _digest(user), "c": conversation_id, "r": body}
        if body is not None and len(json.dumps(value).encode()) > MAX_RECORD_BYTES:
            value.update(r=None, big=True)
        slot = _slot(response_id)
        if previous is not None and _slot(previous.response_id) == slot:
            self._records.delete(KIND, slot)  # read just now: the slot holds this conversation
            self._records.put(KIND, slot, value, TTL, new=True)
        else:
            self._records.put(KIND, slot, value, TTL)
