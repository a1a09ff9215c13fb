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
        key = digest(transcript, user)
        known = self._store.get(key)
        if known is None:
            self._store.put(key, {"c": conversation_id})
        elif isinstance(known, dict) and known.get("c") not in (None, conversation_id):
            self._store.put(key, {"ambiguous": True})
