"""Moderation decisions: a pre-compiled keyword matcher and the app-as-judge contract.

Keyword matching is a case-insensitive substring test, like Dify's own keywords moderation.
The matcher for a keyword list is compiled once (one alternation regex) and cached, so a
check is a single regex scan — output moderation calls it on every streamed segment.

The app-as-judge contract (README "Moderation with an app"): the selected app receives the
text to judge and answers with

- a workflow's outputs, or a chat/completion answer that is a JSON object, with
  ``flagged`` (bool, or "true"/"false"), optional ``preset_response``, and optionally the
  overriding ``text`` (output point) or ``query``/``inputs`` (input point); or
- a plain-text answer starting with ``flagged``, ``true`` or ``yes`` (flagged) — anything
  else means not flagged.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

DEFAULT_PRESET = "Your content violates our usage policy."


@dataclass(frozen=True, slots=True)
class Verdict:
    flagged: bool
    preset_response: str = ""
    overrides: dict[str, Any] | None = None  # "text" | "query" | "inputs" → replacement


@lru_cache(maxsize=64)
def keyword_matcher(keywords: tuple[str, ...]) -> re.Pattern[str] | None:
    """One compiled regex for the whole list (longest first); None when the list is empty."""
    words = sorted({k.strip() for k in keywords if k.strip()}, key=len, reverse=True)
    if not words:
        return None
    return re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE)


def first_keyword(keywords: tuple[str, ...], texts: list[str]) -> str | None:
    """The first keyword found in any of ``texts``, or None."""
    matcher = keyword_matcher(keywords)
    if matcher is None:
        return None
    for text in texts:
        found = matcher.search(text)
        if found:
            return found.group(0)
    return None


def strings_in(value: object) -> list[str]:
    """Every string inside a JSON-like value (inputs are checked value by value)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings_in(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings_in(v)]
    return []


def _truthy(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    return str(value).strip().lower() in {"true", "1", "yes", "flagged"}


def verdict_from_outputs(outputs: dict[str, Any]) -> Verdict:
    overrides = {k: outputs[k] for k in ("text", "query", "inputs") if outputs.get(k) is not None}
    inputs = overrides.get("inputs")
    if isinstance(inputs, str):
        try:
            overrides["inputs"] = json.loads(inputs)
        except ValueError:
            overrides.pop("inputs")
    if not isinstance(overrides.get("inputs", {}), dict):
        overrides.pop("inputs")
    return Verdict(
        flagged=_truthy(outputs.get("flagged", False)),
        preset_response=str(outputs.get("preset_response") or ""),
        overrides=overrides or None,
    )


def verdict_from_answer(answer: str) -> Verdict:
    text = answer.strip()
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            return verdict_from_outputs(parsed)
    first = text.split(maxsplit=1)[0].strip(".,:;!").lower() if text else ""
    return Verdict(flagged=first in {"flagged", "true", "yes"})
