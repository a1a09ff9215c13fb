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
answer to it), so their records live in one :class:`~bridge.storage.slots.BucketStore` bucket chosen
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

from bridge.storage.records import Records
from bridge.storage.slots import Bucket, BucketStore

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


class AnswerDigest:
    """``digest([*turns, ("assistant", answer)], user, secret)``, fed the answer piece by piece.

    A streamed answer is never held (a 50 MB stream would be): JSON escapes each character
    on its own, so the canonical text is hashed as it arrives. Only whitespace that may yet
    turn out to be trailing (``strip``) waits; past ``MAX_PENDING_SPACE`` of it — or with
    text that cannot be encoded — :meth:`hexdigest` is ``None`` and the answer is not
    remembered (the next turn starts a new conversation, as after a lost record).
    """

    MAX_PENDING_SPACE = 64 * 1024
    SLICE = 1024 * 1024

    def __init__(self, turns: Sequence[Turn], user: str, secret: bytes = b"") -> None:
        head = json.dumps([user, [*([r, t.strip()] for r, t in turns), ["assistant", ""]]],
                          ensure_ascii=False)  # fmt: skip
        self._hash: Any = hmac.new(secret, digestmod=hashlib.sha256)
        self._usable = self._update(head[: -len('"]]]')])
        self._started = False
        self._pending = ""  # whitespace after the last non-space character so far

    def _update(self, canonical: str) -> bool:
        try:
            self._hash.update(canonical.encode())
        except UnicodeEncodeError:  # a lone surrogate: digest() would fail alike
            return False
        return True

    def feed(self, text: str) -> None:
        if len(text) > self.SLICE:  # a whole blocking answer: escape it a slice at a time
            for start in range(0, len(text), self.SLICE):
                self.feed(text[start : start + self.SLICE])
            return
        if not self._usable or not text:
            return
        if not self._started:
            text = text.lstrip()
            if not text:
                return
            self._started = True
        core = text.rstrip()
        if core:
            escaped = json.dumps(self._pending + core, ensure_ascii=False)[1:-1]
            self._usable = self._update(escaped)
            self._pending = text[len(core) :]
        else:
            self._pending += text
            self._usable = len(self._pending) <= self.MAX_PENDING_SPACE

    def hexdigest(self) -> str | None:
        if not self._usable:
            return None
        final = self._hash.copy()
        final.update(b'"]]]')
        return str(final.hexdigest())


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

    def answer_digest(self, turns: Sequence[Turn], user: str) -> AnswerDigest:
        """Where the answer to ``turns`` is digested as it streams (see :meth:`remember_answer`)."""
        return AnswerDigest(turns, user, self._secret)

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
        :class:`~bridge.storage.slots.StorageFull` on refusal.
        """
        first = first_exchange(transcript)
        if first is None:
            return
        self._remember(
            digest(first, user, self._secret),
            digest(transcript, user, self._secret),
            user,
            conversation_id,
            replaces,
        )

    def remember_answer(
        self,
        turns: Sequence[Turn],
        answer: AnswerDigest,
        user: str,
        conversation_id: str,
        *,
        replaces: Sequence[Turn] | None = None,
    ) -> None:
        """:meth:`remember` for ``[*turns, answer]`` with the answer digested as it streamed."""
        full = answer.hexdigest()
        if full is None:
            return
        first = first_exchange(turns)  # None: the answer closes the first exchange
        first_key = full if first is None else digest(first, user, self._secret)
        self._remember(first_key, full, user, conversation_id, replaces)

    def _remember(
        self,
        first_key: str,
        full_key: str,
        user: str,
        conversation_id: str,
        replaces: Sequence[Turn] | None,
    ) -> None:
        bucket = self._store.bucket_of(first_key)
        tag = self._store.tag(full_key)
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
