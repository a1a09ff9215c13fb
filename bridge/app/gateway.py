"""The app gateway: the one way every route runs the selected app.

- :meth:`AppGateway.events` invokes the app **always in streaming mode** and yields Dify's
  event dicts unchanged (protocol.md §1.5); a blocking caller aggregates them
  (:mod:`bridge.app.aggregate`), so agent-chat apps work in blocking mode and long runs never
  sit silent long enough to hit the SDK's 250 s limit.
- Failures the SDK raises as bare ``Exception(text)`` (§1.6) become :class:`AppFailure`, a
  :class:`BridgeError` with Dify's Service-API code and status and a :class:`Reason` the
  protocol modules can map further (e.g. ``missing query`` on the workflow route means
  "not a workflow app").
- :class:`ModeMemory` learns each app's mode from the first event of its runs: Dify tells a
  plugin nothing about an app's mode before it runs (SPEC §4).
- :meth:`AppGateway.parameters` is ``fetch_app`` cached briefly per app.
- Dify 1.15.x refuses every app run from a plugin endpoint with ``user not found``
  (daemon-notes §E); that becomes a 502 ``dify_user_not_found`` naming the cause and the fix.
- Events are passed on whatever their name: Dify adds events (``reasoning_chunk``,
  ``workflow_paused``, ``human_input_*`` in 1.15), and an unknown one must never break a run.
"""

from __future__ import annotations

import functools
import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from bridge.errors import BridgeError
from bridge.transport.body import check_text, check_value
from bridge.transport.lines import app_request, check_invocation
from bridge.transport.responses import dumps

CHAT_MODES = frozenset({"chat", "agent-chat", "advanced-chat"})
PARAMETERS_TTL = 60.0
_WRAPPED = re.compile(
    r"^invoke app failed: request failed with status code: (\d+) and respond with: (.*)$", re.S
)


class AppKind(Enum):
    """The three run shapes of Dify apps (and so of routes)."""

    CHAT = "chat"  # chat, agent-chat, advanced-chat
    COMPLETION = "completion"
    WORKFLOW = "workflow"


def kind_of_mode(mode: str) -> AppKind:
    if mode in CHAT_MODES:
        return AppKind.CHAT
    return AppKind.WORKFLOW if mode == "workflow" else AppKind.COMPLETION


class Reason(Enum):
    APP_NOT_FOUND = "app_not_found"
    MISSING_QUERY = "missing_query"
    CONVERSATION_NOT_EXISTS = "conversation_not_exists"
    INVALID_INPUT = "invalid_input"
    UNSUPPORTED_APP = "unsupported_app"
    APP_ERROR = "app_error"  # Dify answered with an error of its own (code passed through)
    RUN_FAILED = "run_failed"  # the run broke after it started
    TIMEOUT = "timeout"
    UNREACHABLE = "unreachable"
    PERMISSION = "permission"
    DIFY_USER_NOT_FOUND = "dify_user_not_found"  # Dify 1.15's end-user lookup (daemon-notes §E)


USER_NOT_FOUND_MESSAGE = (
    "Dify refused to run the app: 'user not found'. This is a known problem of Dify 1.15.x "
    "(since langgenius/dify#37421): app runs requested by plugin endpoints look up an end "
    "user per app, but Dify creates the endpoint's default user without one, so every app "
    "run from a plugin endpoint fails. Fix: upgrade Dify to a release whose plugin app "
    "invocation creates the end user when it is missing (or stay on 1.14.x). No App Bridge "
    "setting can work around it."
)


class AppFailure(BridgeError):
    """A failed app invocation, translated to Dify's Service-API vocabulary."""

    def __init__(self, reason: Reason, status: int, code: str, message: str) -> None:
        super().__init__(status, code, message)
        self.reason = reason


def translate_failure(exc: BaseException, *, conversation_id: str = "") -> AppFailure:
    """Map the SDK's exception text for a failed invocation (protocol.md §1.6).

    Dify raises ``ConversationNotExistsError()`` without a message, so its inner API answers
    ``invalid_param`` with an empty (or ``"None"``) message: when the run named a
    conversation, that is read as "Conversation Not Exists." (verify on your Dify).
    """
    text = str(exc).strip()
    wrapped = _WRAPPED.match(text)
    if wrapped:
        return _from_dify_body(int(wrapped.group(1)), wrapped.group(2), bool(conversation_id))
    if text.startswith("invocation exited without response"):
        return AppFailure(
            Reason.TIMEOUT, 504, "gateway_timeout", "The app sent nothing for 250 seconds."
        )
    if text.startswith("read app failed"):
        return AppFailure(
            Reason.RUN_FAILED,
            500,
            "internal_server_error",
            "The app run failed after it started (or exceeded Dify's 240 s invocation limit).",
        )
    if text.startswith("permission denied"):
        return AppFailure(
            Reason.PERMISSION, 500, "internal_server_error", "The plugin lacks app permission."
        )
    if text.startswith("invoke app failed"):
        return AppFailure(Reason.UNREACHABLE, 502, "app_unavailable", "Dify could not be reached.")
    return AppFailure(Reason.RUN_FAILED, 500, "internal_server_error", "The app run failed.")


_KNOWN_MESSAGES: dict[str, tuple[Reason, int, str, str]] = {
    "app not found": (
        Reason.APP_NOT_FOUND,
        400,
        "app_unavailable",
        "App unavailable, please check your app configurations.",
    ),
    "missing query": (Reason.MISSING_QUERY, 400, "invalid_param", "query is required"),
    "conversation not exists.": (
        Reason.CONVERSATION_NOT_EXISTS,
        404,
        "not_found",
        "Conversation Not Exists.",
    ),
    "unexpected app type": (
        Reason.UNSUPPORTED_APP,
        400,
        "app_unavailable",
        "This app type cannot be run by plugins.",
    ),
    "user not found": (
        Reason.DIFY_USER_NOT_FOUND,
        502,
        "dify_user_not_found",
        USER_NOT_FOUND_MESSAGE,
    ),
}


def _from_dify_body(status: int, body: str, named_conversation: bool) -> AppFailure:
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):  # a proxy's error page, not Dify's answer
        return AppFailure(Reason.UNREACHABLE, 502, "app_unavailable", "Dify could not be reached.")
    message = str(parsed.get("message") or "")
    code = str(parsed.get("code") or "invalid_param")
    status = int(parsed.get("status") or status)
    lowered = message.lower()
    if named_conversation and status == 400 and code == "invalid_param" and lowered in ("", "none"):
        lowered = "conversation not exists."
    known = _KNOWN_MESSAGES.get(lowered)
    if known is not None:
        return AppFailure(*known)
    if code == "invalid_param" and status == 400:
        return AppFailure(Reason.INVALID_INPUT, 400, "invalid_param", message or "Invalid input.")
    return AppFailure(Reason.APP_ERROR, status, code, message or "The app failed.")


# -- events ----------------------------------------------------------------------------------


def kind_of_event(event: Mapping[str, Any]) -> AppKind:
    """Which run shape an event belongs to, from its envelope (protocol.md §1.5)."""
    if "conversation_id" in event:
        return AppKind.CHAT
    if "workflow_run_id" in event and "message_id" not in event:
        return AppKind.WORKFLOW
    return AppKind.COMPLETION


def mode_of_first_event(event: Mapping[str, Any]) -> str | None:
    """The exact app mode told by the first event of a run, when it tells one."""
    name = event.get("event")
    if name == "error":
        return None
    kind = kind_of_event(event)
    if kind is AppKind.WORKFLOW:
        return "workflow"
    if kind is AppKind.COMPLETION:
        return "completion"
    if str(name).startswith("agent_"):
        return "agent-chat"
    if name in ("workflow_started", "node_started") or "workflow_run_id" in event:
        return "advanced-chat"
    return "chat"


class ModeMemory:
    """App id → mode, learned from runs; bounded, shared by every endpoint of the process."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._modes: OrderedDict[str, str] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def get(self, app_id: str) -> str | None:
        return self._modes.get(app_id)

    def learn(self, app_id: str, mode: str) -> None:
        with self._lock:
            self._modes[app_id] = mode
            self._modes.move_to_end(app_id)
            while len(self._modes) > self._capacity:
                self._modes.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._modes.clear()


MODES = ModeMemory()


# -- invocation ---------------------------------------------------------------------------


class AppInvoker(Protocol):
    """The subset of ``session.app`` the gateway uses."""

    chat: Any

    def fetch_app(self, app_id: str) -> Mapping: ...


@dataclass(frozen=True, slots=True)
class RunRequest:
    app_id: str
    inputs: dict[str, Any]
    query: str = ""
    conversation_id: str = ""
    user: str = ""


@dataclass(frozen=True)
class FetchedParameters:
    """An app's ``GET /parameters`` object as fetched, and as the JSON body Dify sends for it
    (encoded once per cache fill)."""

    deadline: float
    value: dict[str, Any]
    body: bytes


@dataclass
class _ParametersCache:
    ttl: float = PARAMETERS_TTL
    entries: dict[str, FetchedParameters] = field(default_factory=dict)

    def get(self, key: str) -> FetchedParameters | None:
        hit = self.entries.get(key)
        if hit is None or hit.deadline <= time.monotonic():
            return None
        return hit

    def put(self, key: str, parameters: dict[str, Any]) -> FetchedParameters:
        if len(self.entries) > 1000:
            self.entries.clear()
        entry = FetchedParameters(
            time.monotonic() + self.ttl, parameters, dumps(parameters).encode()
        )
        self.entries[key] = entry
        return entry


PARAMETERS = _ParametersCache()


def check_run(run: RunRequest) -> None:
    """400 when the run carries what Dify cannot take (too deep, NUL, lone surrogates).

    Bodies are checked as they are parsed (:mod:`bridge.transport.body`); this is the one net under
    every route, whatever the values came from (mappings, headers, query strings).
    """
    check_value(run.inputs, "inputs")
    for name, text in (("query", run.query), ("user", run.user)):
        check_text(text, name)


class AppGateway:
    """Runs one app for one request.

    ``scope`` (the endpoint id) keys everything remembered across requests — app modes and
    cached parameters — so one plugin process serving several workspaces never answers
    one workspace from another's memory.
    """

    def __init__(
        self, app: Callable[[], AppInvoker], *, scope: str = "", modes: ModeMemory = MODES
    ) -> None:
        self._get_app = app
        self._scope = scope
        self._modes = modes

    @functools.cached_property
    def _app(self) -> AppInvoker:
        """``session.app``, looked up when an app is first run or fetched: the SDK builds its
        app invocation helpers then (~25 µs), which a request answered from memory — cached
        parameters, a known mode — never needs."""
        return self._get_app()

    def _key(self, app_id: str) -> str:
        return f"{self._scope}\x00{app_id}"

    def mode(self, app_id: str) -> str | None:
        """The app's mode, once a run has shown it."""
        return self._modes.get(self._key(app_id))

    def events(self, run: RunRequest) -> Iterator[dict[str, Any]]:
        """Dify's event dicts, as they arrive; failures raised as :class:`AppFailure`.

        The app's mode is learned from the first event. What the run carries is checked
        first (:func:`check_run`): every route's values meet the same bounds; then an
        invocation too large for one daemon line is refused (413) before anything is sent.
        """
        check_run(run)
        request = app_request(
            run.app_id,
            run.query,
            run.inputs,
            conversation_id=run.conversation_id or None,
            user=run.user or None,
        )
        check_invocation(request)
        try:
            stream = self._app.chat.invoke(**request)
            key, known = self._key(run.app_id), None
            for event in stream:
                if known is None:
                    known = mode_of_first_event(event)
                    if known is not None:
                        self._modes.learn(key, known)
                elif known == "chat" and str(event.get("event")).startswith("agent_"):
                    known = "agent-chat"  # an agent may open with a plain message
                    self._modes.learn(key, known)
                yield event
        except AppFailure:
            raise
        except Exception as exc:  # noqa: BLE001 - the SDK raises bare Exception(text)
            failure = translate_failure(exc, conversation_id=run.conversation_id)
            if failure.reason is Reason.MISSING_QUERY and not run.query:
                self._modes.learn(self._key(run.app_id), self.mode(run.app_id) or "chat")
            raise failure from None

    def parameters(self, app_id: str) -> dict[str, Any]:
        """``fetch_app``: the app's ``GET /parameters`` object, cached for a minute."""
        return self.fetched(app_id).value

    def fetched(self, app_id: str) -> FetchedParameters:
        """:meth:`parameters` with its encoded JSON body, from one cache lookup."""
        key = self._key(app_id)
        cached = PARAMETERS.get(key)
        if cached is not None:
            return cached
        try:
            parameters = dict(self._app.fetch_app(app_id))
        except Exception as exc:  # noqa: BLE001 - the SDK raises bare Exception(text)
            raise translate_failure(exc) from None
        return PARAMETERS.put(key, parameters)


def input_variables(parameters: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The controls of ``user_input_form`` (each with ``variable``, ``required``, ``type``…)."""
    controls = []
    for item in parameters.get("user_input_form") or []:
        if not isinstance(item, Mapping):
            continue
        for kind, control in item.items():
            if isinstance(control, Mapping) and "variable" in control:
                controls.append({"type": kind, **control})
    return controls
