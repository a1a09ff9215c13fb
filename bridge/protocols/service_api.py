"""Dify Service-API facade: ``/v1/chat-messages``, ``/v1/completion-messages``,
``/v1/workflows/run``, ``/v1/parameters`` (SPEC §4, protocol.md §2).

Requests are validated as Dify validates them, the app runs through the gateway (always
streaming), and the answer is either Dify's blocking object (aggregated) or Dify's SSE
stream: each event forwarded as its own ``data:`` frame the moment it arrives,
``event: ping`` after every 10 s of silence, and a failure after the stream began sent as
an ``error`` event that ends it. Events reach the plugin with their keys sorted (the
daemon's Go map); each frame puts them back in Dify's order (:mod:`bridge.app.dify_order`),
so the bytes are those Dify's own Service API writes.
"""

from __future__ import annotations

import itertools
import logging
import os
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from werkzeug import Response

from bridge.app.aggregate import Aggregator
from bridge.app.dify_order import ENVELOPES, framer, in_dify_order
from bridge.app.gateway import (
    AppFailure,
    AppKind,
    Reason,
    RunRequest,
    input_variables,
    kind_of_event,
    kind_of_mode,
)
from bridge.call import Call
from bridge.errors import BridgeError, describe_exception, internal_error, invalid_param
from bridge.storage.conversations import storage_full
from bridge.storage.overlap import Overlapped
from bridge.transport.body import json_object
from bridge.transport.responses import body_response, dumps, stream_response
from bridge.transport.sse import PING, dify_frame, with_keepalive

logger = logging.getLogger(__name__)

PING_INTERVAL = float(os.environ.get("APP_BRIDGE_PING_INTERVAL", "10"))
RESPONSE_MODES = ("blocking", "streaming")

_MISMATCH = {
    AppKind.CHAT: BridgeError(
        400, "not_chat_app", "Please check if your app mode matches the right API route."
    ),
    AppKind.COMPLETION: BridgeError(
        400, "app_unavailable", "App unavailable, please check your app configurations."
    ),
    AppKind.WORKFLOW: BridgeError(
        400, "not_workflow_app", "Please check if your app mode matches the right API route."
    ),
}


@dataclass(frozen=True, slots=True)
class RunSpec:
    """A validated run request of one route."""

    route: AppKind
    run: RunRequest
    streaming: bool


# -- request validation -------------------------------------------------------------------


def _string(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise invalid_param(f"{name} must be a string", param=name)
    return value


def parse_run(call: Call, route: AppKind) -> RunSpec:
    body = json_object(call.body, call.mimetype)
    inputs = body.get("inputs")
    if inputs is None:
        inputs = {}
    if not isinstance(inputs, dict):
        raise invalid_param("inputs must be an object", param="inputs")
    mode = body.get("response_mode") or "blocking"
    if mode not in RESPONSE_MODES:
        raise invalid_param(
            "response_mode must be one of: blocking, streaming", param="response_mode"
        )
    if body.get("files"):
        raise invalid_param(
            "files are not supported through App Bridge; pass file variables in inputs",
            param="files",
        )
    user = _string(body, "user")
    query = conversation_id = ""
    if route is AppKind.CHAT:
        query = _string(body, "query")
        if not query.strip():
            raise invalid_param("query is required", param="query")
        conversation_id = _string(body, "conversation_id").strip()
        if conversation_id:
            try:
                uuid.UUID(conversation_id)
            except ValueError:
                raise invalid_param(
                    "conversation_id is not a valid uuid", param="conversation_id"
                ) from None
    run = RunRequest(call.settings.app_id, inputs, query, conversation_id, user)
    return RunSpec(route, run, mode == "streaming")


def check_required_inputs(call: Call, run: RunRequest) -> None:
    """Dify's own message for a missing required input, before anything runs.

    A continued conversation keeps the inputs it started with (Dify ignores new ones), so
    only new runs are checked.
    """
    if run.conversation_id:
        return
    for control in input_variables(call.gateway.parameters(run.app_id)):
        name = control["variable"]
        if control.get("required") and run.inputs.get(name) in (None, ""):
            raise invalid_param(f"{name} is required in input form", param=name)


def check_known_mode(call: Call, route: AppKind) -> None:
    mode = call.gateway.mode(call.settings.app_id)
    if mode is not None and kind_of_mode(mode) is not route:
        raise _MISMATCH[route]


def _route_failure(route: AppKind, failure: AppFailure) -> BridgeError:
    """A chat app refuses a query-less run with ``missing query``: a route mismatch here."""
    if failure.reason is Reason.MISSING_QUERY and route is not AppKind.CHAT:
        return _MISMATCH[route]
    return failure


# -- running -----------------------------------------------------------------------------


def run_app(call: Call, route: AppKind) -> Response:
    call.authenticate()
    call.settings.require("app")
    spec = parse_run(call, route)
    check_known_mode(call, route)
    check_required_inputs(call, spec.run)
    conversations = call.conversations
    if spec.run.conversation_id:
        conversations.check(spec.run.conversation_id, spec.run.user)
    run = _Run(call, spec)
    return run.stream() if spec.streaming else run.blocking()


class _Run:
    def __init__(self, call: Call, spec: RunSpec) -> None:
        self.call = call
        self.spec = spec
        self.conversations = call.conversations
        self.recorded = bool(spec.run.conversation_id)
        self.recording: Overlapped | None = None

    def events(self) -> Iterator[dict[str, Any]]:
        """The gateway's events, with route checks and conversation bookkeeping."""
        run = self.spec.run
        try:
            first = True
            for event in self.call.gateway.events(run):
                if first:
                    first = False
                    self._check_route(event)
                yield event
                self._remember(event)
        except AppFailure as failure:
            self._settle(quietly=True)
            if failure.reason is Reason.CONVERSATION_NOT_EXISTS and run.conversation_id:
                self.conversations.forget(run.conversation_id)
            raise _route_failure(self.spec.route, failure) from None
        except BaseException:  # a failure or the caller gone: the write still ends here
            self._settle(quietly=True)
            raise
        self._settle()

    def _check_route(self, first: Mapping[str, Any]) -> None:
        if first.get("event") != "error" and kind_of_event(first) is not self.spec.route:
            raise _MISMATCH[self.spec.route]

    def _remember(self, event: Mapping[str, Any]) -> None:
        """Record the owner of a new conversation, beside the rest of the app's run."""
        if self.recorded or not event.get("conversation_id"):
            return
        self.recorded = True
        conversation, user = str(event["conversation_id"]), self.spec.run.user
        self.recording = Overlapped(lambda: self.conversations.remember(conversation, user))

    def _settle(self, *, quietly: bool = False) -> None:
        """The owner record is written before the answer ends, or the answer fails."""
        recording, self.recording = self.recording, None
        if recording is None:
            return
        try:
            recording.result()
        except Exception as exc:  # noqa: BLE001 - never hand out a conversation nobody owns
            logger.warning("could not record conversation owner: %s", describe_exception(exc))
            if not quietly:
                raise storage_full() from None

    def blocking(self) -> Response:
        aggregator = Aggregator()
        for event in self.events():
            aggregator.feed(event)
        # as Dify's helper.compact_generate_response writes a blocking answer
        return body_response(
            dumps(aggregator.result()).encode(), content_type="application/json; charset=utf-8"
        )

    def stream(self) -> Response:
        ticks = with_keepalive(self.events(), PING_INTERVAL, PING)
        first = next(ticks, None)  # failures before the first event become JSON errors
        if first is None:
            raise BridgeError(502, "app_unavailable", "The app produced no events.")
        return stream_response(
            _frames(itertools.chain([first], ticks), self.spec.route),
            content_type="text/event-stream; charset=utf-8",
        )


def _frames(items: Iterator[Any], route: AppKind) -> Iterator[bytes]:
    """SSE frames; a failure after the first byte becomes an ``error`` event, then the end."""
    last: Mapping[str, Any] | None = None
    frame = framer(route)
    try:
        for item in items:
            if item is PING:
                yield PING
                continue
            yield frame(item)
            last = item
    except BridgeError as error:
        yield dify_frame(in_dify_order(error_event(last, error, route), route))
    except Exception as exc:  # noqa: BLE001 - a stream must end with an event, not a traceback
        logger.error("stream failed: %s", describe_exception(exc))  # noqa: TRY400
        yield dify_frame(in_dify_order(error_event(last, internal_error(), route), route))


def error_event(
    last: Mapping[str, Any] | None, error: BridgeError, route: AppKind
) -> dict[str, Any]:
    """Dify's error event: the route's envelope, then ``code``, ``message``, ``status``
    (framed in Dify's order for the code by :func:`~bridge.app.dify_order.in_dify_order`)."""
    event: dict[str, Any] = {"event": "error"}
    if last is not None:
        for key in ENVELOPES[route][1:]:
            if key in last:
                event[key] = last[key]
    event.update(code=error.code, message=error.message, status=error.status)
    return event


# -- routes ------------------------------------------------------------------------------


def chat_messages(call: Call) -> Response:
    return run_app(call, AppKind.CHAT)


def completion_messages(call: Call) -> Response:
    return run_app(call, AppKind.COMPLETION)


def workflows_run(call: Call) -> Response:
    return run_app(call, AppKind.WORKFLOW)


def parameters(call: Call) -> Response:
    call.authenticate()
    call.settings.require("app")
    body = call.gateway.fetched(call.settings.app_id).body
    return body_response(body, content_type="application/json")
