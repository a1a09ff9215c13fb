"""Conversation continuity for stateless OpenAI clients (SPEC §7).

OpenAI-style clients resend the whole history on every turn. After answering, the bridge
remembers the transcript it answered (history + its answer, plus the caller's ``user``) →
the Dify conversation. A later request whose earlier turns equal a remembered transcript
continues that conversation with only the new user message.

Joining someone else's conversation (issue #10 item 4) is prevented three ways:

- **Only a conversation's latest state continues it.** Continuing from transcript *T*
  replaces *T*'s record by the new, longer one; an older state (a guessed first exchange,
  an edited or regenerated turn) starts a new conversation. So whoever continues a
  conversation has sent every turn the app remembers of it: a guessed first exchange of a
  conversation that went on reaches nothing, and one that did not go on holds only what the
  guesser already sent. Two byte-identical requests cannot be told apart; whoever comes
  first continues, the other starts afresh.
- **Ambiguous transcripts never continue.** Two conversations that produced the same
  transcript (a deterministic app greeting everyone alike) mark it ambiguous.
- **Keys are secret.** Records are addressed by an HMAC keyed with a secret derived from
  the endpoint's ``api_key``, so storage keys cannot be computed from a transcript.

Layout: all states of one conversation share its *first exchange* (first user turn and the
answer to it), so their records live in one :class:`~bridge.slots.BucketStore` bucket chosen
by the first exchange: a lookup is one ``get``, remembering the next state one ``set``
(reusing the bucket read at lookup). Only digests are stored, never text; records live 7 days
(a lost record only means a new conversation, so a full bucket evicts the soonest-expiring).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from typing import Any

from bridge.records import Records
from bridge.slots import Bucket, BucketStore

KIND = "oai"
TTL = 7 * 24 * 3600.0
BUCKETS = 256
CAPACITY = 16  # records of ~70 B: a bucket ≤ 1.2 KB; 256 buckets ≤ 300 KB per endpoint
SLOTS = BUCKETS * CAPACITY
AMBIGUOUS = "!"

Turn = tuple[str, str]  # (role, text)


def digest(turns: Sequence[Turn], user: str, secret: bytes = b"") -> str:
    canonical = json.dumps(
        [user, [[role, text.strip()] for role, text in turns]], ensure_ascii=False
    )
    return hmac.new(secret, canonical.encode(), hashlib.sha256).hexdigest()


def first_exchange(turns: Sequence[Turn]) -> list[Turn] | None:
    """The turns up to and including the first answer, or None before any answer."""
    for index, (role, _text) in enumerate(turns):
        if role == "assistant":
            return list(turns[: index + 1])
    return None


def endpoint_secret(api_key: str) -> bytes:
    return hashlib.sha256(b"app-bridge transcripts\x00" + api_key.encode()).digest()


class Transcripts:
    def __init__(self, records: Records, secret: bytes = b"") -> None:
        self._store = BucketStore(
            records, KIND, buckets=BUCKETS, capacity=CAPACITY, ttl=TTL, evict=True
        )
        self._secret = secret
        self._read: dict[str, Bucket] = {}  # bucket name → content read by this request

    def _bucket(self, turns: Sequence[Turn], user: str) -> str | None:
        first = first_exchange(turns)
        return None if first is None else self._store.bucket_of(digest(first, user, self._secret))

    def _tag(self, turns: Sequence[Turn], user: str) -> str:
        return self._store.tag(digest(turns, user, self._secret))

    def conversation_for(self, history: Sequence[Turn], user: str) -> str | None:
        """The conversation whose latest answered transcript equals ``history`` (one ``get``)."""
        bucket = self._bucket(history, user)
        if bucket is None:
            return None
        content = self._read[bucket] = self._store.read(bucket)
        entry = content.find(self._tag(history, user))
        value: Any = None if entry is None else entry.value
        return value if isinstance(value, str) and value != AMBIGUOUS else None

    def remember(
        self,
        transcript: Sequence[Turn],
        user: str,
        conversation_id: str,
        *,
        replaces: Sequence[Turn] | None = None,
    ) -> None:
        """Record ``transcript`` → ``conversation_id``; ``replaces`` is the state it continued.

        One ``set`` when :meth:`conversation_for` read the bucket in this request and this
        process has not written it since, else one ``get`` + one ``set``. Raises
        :class:`~bridge.slots.StorageFull` on refusal.
        """
        bucket = self._bucket(transcript, user)
        if bucket is None:
            return
        tag = self._tag(transcript, user)
        gone = self._tag(replaces, user) if replaces else None

        def change(content: Bucket) -> Bucket:
            if gone is not None:
                content = content.without(gone)
            known = content.find(tag)
            value = conversation_id
            if known is not None and known.value != conversation_id:
                value = AMBIGUOUS  # two conversations answered alike: continue neither
            return content.with_record(tag, value, self._store.expiry())

        self._read[bucket] = self._store.update(bucket, change, self._read.get(bucket))
