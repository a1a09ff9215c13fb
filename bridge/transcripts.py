"""Conversation continuity for stateless OpenAI clients (SPEC §7).

OpenAI-style clients resend the whole history on every turn. After answering, the bridge
remembers a SHA-256 digest of the transcript it answered (history + its answer, plus the
caller's ``user``) → the Dify conversation. A later request whose earlier turns hash to a
remembered digest continues that conversation with only the new user message.

Two different conversations can produce the same transcript (a deterministic app greeting
everyone alike). Such a digest is marked *ambiguous* and never continued — a new
conversation starts instead — so nobody is ever joined to someone else's conversation.
Only digests are stored, never text; records live 7 days in a bounded
:class:`~bridge.slots.SlotStore` (a lost record only means a new conversation).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from bridge.records import Records
from bridge.slots import SlotStore

KIND = "oai"
TTL = 7 * 24 * 3600.0
SLOTS = 8192  # × ~160 B per record ≈ 1.3 MB per endpoint at most

Turn = tuple[str, str]  # (role, text)


def digest(turns: Sequence[Turn], user: str) -> str:
    canonical = json.dumps(
        [user, [[role, text.strip()] for role, text in turns]], ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class AnswerDigest:
    """``digest([*turns, ("assistant", answer)], user)``, fed the answer piece by piece.

    A streamed answer is never held (a 50 MB stream would be): JSON escapes each character
    on its own, so the canonical text is hashed as it arrives. Only whitespace that may yet
    turn out to be trailing (``strip``) waits; past ``MAX_PENDING_SPACE`` of it — or with
    text that cannot be encoded — :meth:`hexdigest` is ``None`` and the answer is not
    remembered (the next turn starts a new conversation, as after a lost record).
    """

    MAX_PENDING_SPACE = 64 * 1024
    SLICE = 1024 * 1024

    def __init__(self, turns: Sequence[Turn], user: str) -> None:
        head = json.dumps([user, [*([r, t.strip()] for r, t in turns), ["assistant", ""]]],
                          ensure_ascii=False)  # fmt: skip
        self._hash: Any = hashlib.sha256()
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
    def __init__(self, records: Records) -> None:
        self._store = SlotStore(records, KIND, slots=SLOTS, ttl=TTL)

    def conversation_for(self, history: Sequence[Turn], user: str) -> str | None:
        """The conversation whose answered transcript equals ``history``, if unambiguous."""
        if not history:
            return None
        value = self._store.get(digest(history, user))
        if isinstance(value, dict) and isinstance(value.get("c"), str):
            return value["c"]
        return None

    def remember(self, transcript: Sequence[Turn], user: str, conversation_id: str) -> None:
        self.remember_digest(digest(transcript, user), conversation_id)

    def remember_digest(self, key: str, conversation_id: str) -> None:
        """:meth:`remember` for a transcript digested already (:class:`AnswerDigest`)."""
        known = self._store.get(key)
        if known is None:
            self._store.put(key, {"c": conversation_id})
        elif isinstance(known, dict) and known.get("c") not in (None, conversation_id):
            self._store.put(key, {"ambiguous": True})
