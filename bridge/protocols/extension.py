"""Dify's API-based Extension protocol on ``POST /extension`` (SPEC §5, protocol.md §3).

Register the endpoint URL under *Settings → API Extension* with the endpoint's ``api_key``.
Dify then posts ``{"point": …, "params": {…}}`` with ``Authorization: Bearer <key>``:

- ``ping`` → ``{"result": "pong"}`` (sent when the extension is saved);
- ``app.external_data_tool.query`` → runs the selected app, ``{"result": "<text>"}``;
- ``app.moderation.input`` / ``app.moderation.output`` → a moderation result that always
  carries ``action``, decided by keywords, by the selected app, or both.

Dify waits 60 s and retries up to three times on timeouts and 429/5xx, so app runs are
single-flighted per request (a retry shares the first run), finish or fail within
``APP_DEADLINE`` seconds, and app failures are answered with ``424`` — shown by Dify, not
retried.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from werkzeug import Response

from bridge.app.aggregate import PAUSED_TEXT, answer_text, is_paused, run_blocking
from bridge.app.gateway import RunRequest, input_variables
from bridge.call import Call
from bridge.errors import BridgeError, invalid_param
from bridge.protocols.moderation import (
    DEFAULT_PRESET,
    Verdict,
    first_keyword,
    strings_in,
    verdict_from_answer,
    verdict_from_outputs,
)
from bridge.singleflight import SingleFlight
from bridge.transport.body import json_object
from bridge.transport.responses import json_response

APP_DEADLINE = 50.0  # Dify gives up after 60 s (connect included)
RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
FLIGHTS = SingleFlight(ttl=300.0)


def handle(call: Call) -> Response:
    call.authenticate()
    body = json_object(call.body, call.mimetype)
    point = body.get("point")
    params = body.get("params")
    if params is None:
        params = {}
    if not isinstance(point, str) or not point:
        raise invalid_param("point is required", param="point")
    if not isinstance(params, dict):
        raise invalid_param("params must be an object", param="params")
    handler = POINTS.get(point)
    if handler is None:
        raise invalid_param(
            f"Unknown extension point '{point[:100]}'. Supported: {', '.join(POINTS)}.",
            param="point",
        )
    return json_response(handler(call, params))


def ping(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    return {"result": "pong"}


# -- running the app --------------------------------------------------------------------


def _no_retry(error: BridgeError) -> BridgeError:
    """Dify retries 429/5xx; an app failure would only fail again, so make it final."""
    if error.status in RETRIED_STATUSES:
        return BridgeError(424, error.code, error.message)
    return error


def _run_once(call: Call, point: str, params: dict[str, Any], run: RunRequest) -> dict[str, Any]:
    """The app's blocking result, single-flighted per endpoint + request."""
    digest = hashlib.sha256(
        json.dumps(
            [
                call.endpoint_id,
                call.settings.app_id,
                point,
                params,
                call.settings.query_variable,
            ],
            sort_keys=True,
            default=str,
        ).encode()
    ).hexdigest()
    try:
        result = FLIGHTS.run(
            digest, lambda: run_blocking(call.gateway.events(run), timeout=APP_DEADLINE)
        )
    except BridgeError as error:
        raise _no_retry(error) from None
    if is_paused(result):  # nothing to hand back to Dify until someone fills the form
        raise BridgeError(424, "app_paused", PAUSED_TEXT)
    return result


def _app_inputs(call: Call, inputs: object, extra: Mapping[str, str]) -> dict[str, Any]:
    """Caller inputs limited to the app's declared variables, plus ``extra`` where declared.

    The caller's text goes to ``query_variable`` (default ``query``) when the app declares
    it; workflow and completion apps have no other place for it.
    """
    declared = {
        c["variable"] for c in input_variables(call.gateway.parameters(call.settings.app_id))
    }
    chosen = {
        k: v for k, v in (inputs if isinstance(inputs, dict) else {}).items() if k in declared
    }
    for name, value in extra.items():
        if name in declared:
            chosen[name] = value
    return chosen


def external_data_tool(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    call.settings.require("app")
    query = str(params.get("query") or "")
    tool_variable = str(params.get("tool_variable") or "")
    query_variable = call.settings.query_variable or "query"
    inputs = _app_inputs(
        call, params.get("inputs"), {"tool_variable": tool_variable, query_variable: query}
    )
    # chat-type apps need a query; fall back to the variable being filled
    run = RunRequest(call.settings.app_id, inputs, query or tool_variable or "query")
    result = _run_once(call, "app.external_data_tool.query", params, run)
    try:
        return {"result": answer_text(result)}
    except BridgeError as error:
        raise _no_retry(error) from None


# -- moderation ------------------------------------------------------------------------


def _keyword_verdict(call: Call, texts: list[str]) -> Verdict | None:
    if first_keyword(call.settings.moderation_keywords, texts) is None:
        return None
    return Verdict(flagged=True)


def _app_verdict(call: Call, point: str, params: dict[str, Any], text: str) -> Verdict:
    call.settings.require("app")
    inputs_json = json.dumps(params.get("inputs") or {}, ensure_ascii=False)
    query_variable = call.settings.query_variable or "query"
    extra = {
        "point": point.rsplit(".", 1)[-1],
        "text": text,
        "inputs": inputs_json,
        query_variable: text,
    }
    inputs = _app_inputs(call, {}, extra)
    result = _run_once(call, point, params, RunRequest(call.settings.app_id, inputs, text or " "))
    if "workflow_run_id" in result and "answer" not in result:
        return verdict_from_outputs(dict((result.get("data") or {}).get("outputs") or {}))
    return verdict_from_answer(str(result.get("answer") or ""))


def _decide(call: Call, point: str, params: dict[str, Any], texts: list[str], text: str) -> Verdict:
    call.settings.require("moderation_mode")  # never moderate with a guessed mode
    mode = call.settings.moderation_mode
    if mode in ("keywords", "keywords_and_app"):
        verdict = _keyword_verdict(call, texts)
        if verdict is not None or mode == "keywords":
            return verdict or Verdict(flagged=False)
    return _app_verdict(call, point, params, text)


def _result(call: Call, verdict: Verdict, allowed: tuple[str, ...]) -> dict[str, Any]:
    preset = verdict.preset_response or call.settings.moderation_preset_response or DEFAULT_PRESET
    overrides = {k: v for k, v in (verdict.overrides or {}).items() if k in allowed}
    if verdict.flagged and overrides:
        return {"flagged": True, "action": "overridden", "preset_response": preset, **overrides}
    if verdict.flagged:
        return {"flagged": True, "action": "direct_output", "preset_response": preset}
    return {"flagged": False, "action": "direct_output", "preset_response": ""}


def moderation_input(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    query = str(params.get("query") or "")
    inputs = params.get("inputs") if isinstance(params.get("inputs"), dict) else {}
    texts = [query, *strings_in(inputs)]
    verdict = _decide(call, "app.moderation.input", params, texts, query)
    return _result(call, verdict, ("query", "inputs"))


def moderation_output(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    text = str(params.get("text") or "")
    verdict = _decide(call, "app.moderation.output", params, [text], text)
    return _result(call, verdict, ("text",))


POINTS: dict[str, Callable[[Call, dict[str, Any]], dict[str, Any]]] = {
    "ping": ping,
    "app.external_data_tool.query": external_data_tool,
    "app.moderation.input": moderation_input,
    "app.moderation.output": moderation_output,
}
