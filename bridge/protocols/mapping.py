"""Webhook payload → app inputs, query and user, with JMESPath (SPEC §6).

The request document every expression searches::

    {"body": <parsed JSON | form fields | text | null>,
     "headers": {<lower-case name>: <value>}, "query": {<name>: <value>},
     "method": "POST", "path": "/webhook"}

``webhook_inputs`` is a JSON object ``{"<app input>": "<expression>"}``; ``webhook_query`` and
``webhook_user`` are single expressions. Expressions are compiled once per distinct text and
cached. Without a mapping, a JSON body's ``inputs``/``query``/``user``/``conversation_id``
are used the way Dify callers send them, and the whole body is offered as the input
``payload`` (JSON text) when the app declares it. Values are coerced to the types the app
declares (``fetch_app``): text → string, number → int/float, checkbox → bool.

Bounds (docs/limits.md): a mapping runs over a body of at most :data:`MAX_MAPPED_BODY` bytes
(a larger one is ``413`` naming the mapping setting), and all expressions of one delivery
share a :class:`Budget` of :data:`MAX_STEPS` interpreter steps and :data:`MAX_SECONDS`
seconds (``400`` naming the setting when spent; the clock starts when evaluation does).
Evaluation runs in a native thread (:mod:`bridge.transport.cpu`) and releases the GIL every
:data:`YIELD_STEPS` steps, so a heavy mapping never holds up other requests for long.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError
from jmespath.visitor import TreeInterpreter

from bridge.config.settings import Settings, coerce_bool
from bridge.errors import BridgeError, invalid_param, invalid_setting
from bridge.transport.body import MAX_INT_DIGITS, check_value, pause
from bridge.transport.cpu import offload

_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")
TEXT_TYPES = frozenset({"text-input", "paragraph", "select", "string"})
NUMBER_TYPES = frozenset({"number"})
BOOL_TYPES = frozenset({"checkbox", "boolean"})


MAPPING_SETTINGS = ("webhook_inputs", "webhook_query", "webhook_user")
MAX_MAPPED_BODY = 4 * 1024 * 1024  # bytes of request body a mapping may search
MAX_STEPS = 1_000_000  # interpreter steps for all expressions of one delivery
MAX_SECONDS = 2.0  # wall time for all expressions of one delivery
YIELD_STEPS = 1_000  # steps between budget checks (each releases the GIL)


class Budget:
    """Steps and time left for one delivery's mapping, checked every :data:`YIELD_STEPS`."""

    def __init__(self, steps: int = MAX_STEPS, seconds: float = MAX_SECONDS) -> None:
        self.steps = steps
        self.seconds = seconds
        self.used = 0
        self.started = time.monotonic()

    def spend(self, steps: int) -> None:
        """Account ``steps``, let the loop thread in, raise :class:`BudgetSpent` when out."""
        self.used += steps
        pause()
        if self.used > self.steps:
            raise BudgetSpent(f"more than {self.steps:,} steps")
        if time.monotonic() - self.started > self.seconds:
            raise BudgetSpent(f"more than {self.seconds:g} s")


class BudgetSpent(Exception):
    """The mapping budget is spent; the message says which bound."""


class _Interpreter(TreeInterpreter):
    """jmespath's own interpreter, counting every node visit against a :class:`Budget`.

    Every evaluation step — projections, filters, ``map()``/``sort_by()`` callbacks — goes
    through :meth:`visit`, so no expression escapes the count.
    """

    def __init__(self, budget: Budget) -> None:
        super().__init__()
        self._budget = budget
        self._pending = 0

    def visit(self, node: Any, *args: Any, **kwargs: Any) -> Any:
        self._pending += 1
        if self._pending >= YIELD_STEPS:
            self._budget.spend(self._pending)
            self._pending = 0
        return super().visit(node, *args, **kwargs)


@dataclass(frozen=True, slots=True)
class Mapped:
    inputs: dict[str, Any]
    query: str
    user: str
    conversation_id: str


@lru_cache(maxsize=256)
def _compiled(expression: str) -> Any:
    return jmespath.compile(expression)


def compile_expression(setting: str, expression: str) -> Any:
    """The compiled expression, or a 503 naming the setting and the expression."""
    try:
        return _compiled(expression)
    except (JMESPathError, RecursionError):
        raise invalid_setting(
            setting, f"has an invalid JMESPath expression: {expression[:80]}"
        ) from None


@lru_cache(maxsize=64)
def _input_expressions(text: str) -> tuple[tuple[str, str], ...]:
    parsed = json.loads(text)
    return tuple((str(k), str(v)) for k, v in parsed.items())


def search(
    setting: str, expression: str, document: Mapping[str, Any], budget: Budget | None = None
) -> Any:
    """Evaluate within ``budget``; a 400 naming the setting when it fails or overspends."""
    compiled = compile_expression(setting, expression)
    try:
        result = _Interpreter(budget or Budget()).visit(compiled.parsed, document)
    except BudgetSpent as spent:
        raise invalid_param(
            f"{setting} expression '{expression[:80]}' needed {spent} on this payload (the "
            f"mapping budget is {MAX_STEPS:,} steps and {MAX_SECONDS:g} s per delivery): "
            "simplify the expression or send a smaller payload.",
            param=setting,
        ) from None
    except (JMESPathError, RecursionError, ArithmeticError, TypeError, ValueError):
        raise invalid_param(
            f"{setting} expression '{expression[:80]}' failed on this payload.", param=setting
        ) from None
    check_value(result, f"The result of {setting} expression '{expression[:80]}'", strings=False)
    return result


def check_mapped_size(settings: Settings, body_size: int) -> None:
    """413 naming the first mapping setting in use when the body is too large to map."""
    if body_size <= MAX_MAPPED_BODY:
        return
    for name in MAPPING_SETTINGS:
        if getattr(settings, name):
            raise BridgeError(
                413,
                "payload_too_large",
                f"{name}: mappings search request bodies of at most "
                f"{MAX_MAPPED_BODY // (1024 * 1024)} MiB and this one is "
                f"{body_size / (1024 * 1024):.1f} MiB; send a smaller payload, or clear the "
                "mapping settings to pass the whole body as the payload input.",
                param=name,
            )


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def coerce(name: str, value: Any, control: Mapping[str, Any] | None) -> Any:
    """``value`` as the app declares ``name``; a 400 naming the input when impossible."""
    kind = (control or {}).get("type")
    if kind in TEXT_TYPES:
        return as_text(value)
    if kind in NUMBER_TYPES:
        if isinstance(value, bool):
            raise invalid_param(f"input '{name}' must be a number.", param=name)
        if isinstance(value, int):
            return value
        text = repr(value) if isinstance(value, float) else as_text(value).strip()
        if len(text) > MAX_INT_DIGITS:
            raise invalid_param(
                f"input '{name}' must be a number of at most {MAX_INT_DIGITS} digits.", param=name
            )
        number = float(text) if _NUMBER.fullmatch(text) else math.nan
        if not math.isfinite(number):
            raise invalid_param(
                f"input '{name}' must be a number, got {as_text(value)[:40]!r}.", param=name
            )
        return int(text) if _INTEGER.fullmatch(text) else number
    if kind in BOOL_TYPES:
        return coerce_bool(value)
    return value


def map_request(
    settings: Settings, document: Mapping[str, Any], controls: list[dict[str, Any]]
) -> Mapped:
    """Inputs, query, user and conversation for the app, from the request document.

    With a mapping, the expressions run in a native thread (:mod:`bridge.transport.cpu`): the event
    loop keeps serving other requests meanwhile.
    """
    if any(getattr(settings, name) for name in MAPPING_SETTINGS):
        return offload(_map_request, settings, document, controls)
    return _map_request(settings, document, controls)


def _map_request(
    settings: Settings, document: Mapping[str, Any], controls: list[dict[str, Any]]
) -> Mapped:
    body = document.get("body")
    json_body = body if isinstance(body, dict) else {}
    declared = {c["variable"]: c for c in controls}
    budget = Budget()
    if settings.webhook_inputs:
        inputs, sources = {}, {}
        for name, expression in _input_expressions(settings.webhook_inputs):
            value = search("webhook_inputs", expression, document, budget)
            if value is not None:
                inputs[name], sources[name] = value, expression
    else:
        raw_inputs = json_body.get("inputs")
        inputs = dict(raw_inputs) if isinstance(raw_inputs, dict) else {}
        sources = {}
    if "payload" in declared and "payload" not in inputs and body is not None:
        inputs["payload"] = as_text(body)
    typed = {
        k: coerce(k, v, declared.get(k)) for k, v in inputs.items() if k in declared or not declared
    }
    for name, control in declared.items():
        if control.get("required") and typed.get(name) in (None, ""):
            source = sources.get(name) or _expression_for(settings, name)
            hint = f" (webhook_inputs expression '{source}' found nothing)" if source else ""
            raise invalid_param(f"input '{name}' is required by the app{hint}.", param=name)
    if settings.webhook_query:
        query = as_text(search("webhook_query", settings.webhook_query, document, budget))
    else:
        query = as_text(json_body.get("query")) if "query" in json_body else ""
    if settings.webhook_user:
        user = as_text(search("webhook_user", settings.webhook_user, document, budget))
    else:
        user = as_text(json_body.get("user")) if "user" in json_body else ""
    conversation_id = (
        as_text(json_body.get("conversation_id")) if not settings.webhook_inputs else ""
    )
    return Mapped(typed, query, user.strip(), conversation_id.strip())


def _expression_for(settings: Settings, name: str) -> str:
    if not settings.webhook_inputs:
        return ""
    return dict(_input_expressions(settings.webhook_inputs)).get(name, "")


__all__ = ["BridgeError", "Mapped", "as_text", "coerce", "compile_expression", "map_request"]
