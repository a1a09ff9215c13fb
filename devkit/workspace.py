"""An emulated Dify workspace: apps of every mode, plugin storage, and ``fetch_app``.

It answers the plugin's backwards invocations with exactly what Dify + the daemon send
(protocol.md §1.2–1.7 and §6):

- app runs yield the Service-API *full* stream dicts of each mode (§1.5) — envelope keys
  first, then the stream response's own fields — or, in blocking mode, the single blocking
  dict (§1.4);
- failures are the daemon's error texts (§1.6), e.g. ``invoke app failed: request failed
  with status code: 400 and respond with: {"code": "invalid_param", ...}``;
- every payload reaches the plugin as the daemon re-encodes it through a Go
  ``map[string]any`` (daemon-notes §D): keys in alphabetical order, whole floats as ints,
  integers beyond 2**53 as Go prints float64s (:func:`go_reencode`);
- Dify 1.15 events (daemon-notes §D): ``reasoning_chunk`` and ``message_end.metadata.reasoning``
  (``Script.reasoning``), a Human Input pause (``Script.pause``: ``human_input_required`` then
  ``workflow_paused``, or Dify's paused blocking shapes), ``workflow_started.data.reason``,
  ``*_truncated`` node fields and no ``parallel_*`` fields; ``Script.extra_events`` injects any
  further event (``human_input_form_filled``, an invented future event, …);
- ``Workspace.user_not_found`` makes every app run fail as Dify 1.15.0 fails app invocations
  from plugin endpoints (daemon-notes §E): ``invalid_param`` ``user not found``;
- storage follows the daemon: missing keys are errors, keys ≤ 256 chars without ``..``,
  ``//`` or ``\\``, and a byte quota charged on *every* ``set`` (overwrites included) and
  refunded by ``delete`` — the data is written even when the quota check then fails.

Everything an app does is scriptable per app (:class:`Script`) and every invocation is
recorded (:attr:`Workspace.invocations`) so tests can assert on what Dify received.
"""

from __future__ import annotations

import copy
import json
import posixpath
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

CHAT_MODES = ("chat", "agent-chat", "advanced-chat")
MODES = (*CHAT_MODES, "completion", "workflow")
WORKFLOW_MODES = ("advanced-chat", "workflow")
DEFAULT_QUOTA = 16 * 1024 * 1024
MISSING_KEY = "load data failed, please check if the key is correct or you have not set it"
GO_EXACT_INT = 2**53  # float64 holds integers exactly up to here
GO_PLAIN_FLOAT = 1e21  # Go's encoding/json writes whole float64s below this without exponent


class InvocationFailed(Exception):
    """A backwards invocation that the daemon answers with an ``error`` event."""


def inner_api_error(message: str, *, code: str = "invalid_param", status: int = 400) -> str:
    """The daemon's text for a non-200 answer of Dify's inner API (protocol.md §1.6)."""
    body = json.dumps({"code": code, "message": message, "status": status})
    return (
        f"invoke app failed: request failed with status code: {status} and respond with: {body}\n"
    )


USER_NOT_FOUND = inner_api_error("user not found")  # Dify 1.15.0, endpoint-originated runs


def dify_frame(event: Mapping[str, Any]) -> str:
    """The SSE frame Dify's own Service API writes for ``event`` (compact orjson, raw UTF-8).

    ``json.dumps`` with these options writes what ``orjson.dumps`` writes for the values
    these events hold (strings, ints, short floats, null, lists, objects).
    """
    return "data: " + json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n\n"


def go_reencode(value: Any) -> Any:
    """``value`` after the daemon's hop: ``json.Unmarshal`` into ``any``, ``json.Marshal`` back.

    Objects come out with their keys sorted (Go sorts map keys), every number went through
    float64 (``2.0`` arrives as ``2``; integers beyond 2**53 as Go prints a float64), and the
    plugin's ``json.loads`` sees the result.
    """
    if isinstance(value, dict):
        return {str(k): go_reencode(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list | tuple):
        return [go_reencode(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value if abs(value) <= GO_EXACT_INT else _go_whole(float(value))
    if isinstance(value, float) and value.is_integer() and abs(value) < GO_PLAIN_FLOAT:
        return _go_whole(value)
    return value


def _go_whole(value: float) -> int:
    """A whole float64 as Go writes it: the shortest round-trip digits, zero-padded.

    ``2**60 + 1`` becomes float64 ``1152921504606846976``, which Go writes as
    ``1152921504606847000`` (seen on the real daemon).
    """
    return int(Decimal(repr(value)))


@dataclass
class Script:
    """What an app does on a run. Defaults give a short, instant, successful answer.

    ``answer`` may use ``{query}`` and ``{inputs[name]}`` placeholders.
    """

    answer: str = "Hello from {app_name}. You said: {query}"
    chunks: list[str] | None = None  # explicit deltas; default: ``answer`` split in words
    first_delay: float = 0.0  # seconds before the first event
    delay: float = 0.0  # seconds between events
    outputs: dict[str, Any] | None = None  # workflow outputs; default {"text": answer}
    workflow_status: str = "succeeded"
    error_after: int | None = None  # emit an ``error`` event after this many events
    error_code: str = "completion_request_error"
    error_message: str = "[models] Error: the model provider failed."
    raise_before: str | None = None  # fail before any event, with this daemon error text
    fail_after: int | None = None  # the stream breaks after this many events ("read app failed")
    usage_tokens: tuple[int, int] = (12, 8)
    replace_with: str | None = None  # output moderation: a message_replace before the end
    reasoning: str | None = None  # model reasoning: reasoning_chunk events + metadata.reasoning
    pause: bool = False  # chatflow/workflow: a Human Input node pauses the run after the LLM
    extra_events: list[dict[str, Any]] | None = None  # injected after the first event


@dataclass
class App:
    id: str
    mode: str
    name: str = ""
    user_input_form: list[dict[str, Any]] = field(default_factory=list)
    opening_statement: str = ""
    script: Script = field(default_factory=Script)

    def parameters(self) -> dict[str, Any]:
        """What ``fetch_app`` returns: the Service API's ``GET /parameters`` object."""
        return {
            "opening_statement": self.opening_statement,
            "suggested_questions": [],
            "suggested_questions_after_answer": {"enabled": False},
            "speech_to_text": {"enabled": False},
            "text_to_speech": {"enabled": False, "voice": "", "language": ""},
            "retriever_resource": {"enabled": True},
            "annotation_reply": {"enabled": False},
            "more_like_this": {"enabled": False},
            "user_input_form": copy.deepcopy(self.user_input_form),
            "sensitive_word_avoidance": {"enabled": False, "type": "", "configs": []},
            "file_upload": {
                "image": {"enabled": False, "number_limits": 3, "transfer_methods": []}
            },
            "system_parameters": {
                "image_file_size_limit": 10,
                "video_file_size_limit": 100,
                "audio_file_size_limit": 50,
                "file_size_limit": 15,
                "workflow_file_upload_limit": 10,
            },
        }

    def variables(self) -> list[tuple[str, dict[str, Any]]]:
        """(variable name, control) pairs of the input form."""
        out = []
        for item in self.user_input_form:
            for control in item.values():
                if isinstance(control, dict) and "variable" in control:
                    out.append((control["variable"], control))
        return out


@dataclass(frozen=True)
class Invocation:
    """One ``POST /inner/api/invoke/app`` as Dify received it (daemon-normalised)."""

    app_id: str
    query: str
    inputs: dict[str, Any]
    response_mode: str
    conversation_id: str
    user: str
    user_id: str
    tenant_id: str


class Storage:
    """Plugin storage with the daemon's semantics and quota (protocol.md §6)."""

    def __init__(self, quota: int = DEFAULT_QUOTA, *, charge_overwrites: bool = True) -> None:
        self.quota = quota
        self.charge_overwrites = charge_overwrites
        self.data: dict[str, bytes] = {}
        self.used = 0  # the daemon's ``tenant_storages.size``
        self.ops: list[str] = []
        self._lock = threading.Lock()

    @staticmethod
    def _check_key(key: str) -> str:
        cleaned = posixpath.normpath(key) if key else "."
        if ".." in cleaned or "//" in cleaned or "\\" in cleaned:
            raise InvocationFailed("invalid key: path traversal attempt detected")
        if len(key) > 256:
            raise InvocationFailed("key length must be less than 256 characters")
        return cleaned

    def handle(self, request: Mapping[str, Any]) -> dict[str, Any]:
        opt, key = request.get("opt"), str(request.get("key", ""))
        with self._lock:
            self.ops.append(opt)
            key = self._check_key(key)
            if opt == "set":
                return self._set(key, bytes.fromhex(str(request.get("value", ""))))
            if opt == "get":
                if key not in self.data:
                    raise InvocationFailed(MISSING_KEY)
                return {"data": self.data[key].hex()}
            if opt == "del":
                if key not in self.data:
                    raise InvocationFailed(
                        f"delete data failed: stat {key}: no such file or directory"
                    )
                self.used -= len(self.data.pop(key))
                return {"data": "ok", "deleted_num": 1}
            if opt == "exist":
                present = key in self.data
                return {"data": present, "exist_num": int(present)}
        raise InvocationFailed(f"unknown storage operation: {opt}")

    def _set(self, key: str, value: bytes) -> dict[str, Any]:
        old = len(self.data.get(key, b""))
        charge = len(value) if self.charge_overwrites else len(value) - old
        self.data[key] = value  # written before the quota check, as the daemon does
        if self.used + charge > self.quota:
            raise InvocationFailed("allocated size is greater than max storage size")
        self.used += charge
        return {"data": "ok"}


class Workspace:
    """Apps, storage and a record of invocations; answers backwards invocations."""

    def __init__(
        self,
        apps: list[App] | None = None,
        *,
        storage: Storage | None = None,
        tenant_id: str = "tenant-0000",
    ) -> None:
        self.apps: dict[str, App] = {app.id: app for app in apps or []}
        self.storage = storage or Storage()
        self.tenant_id = tenant_id
        self.invocations: list[Invocation] = []
        self.emitted: list[list[dict[str, Any]]] = []  # per invocation, the dicts delivered
        self.sent: list[list[dict[str, Any]]] = []  # per invocation, the dicts as Dify sent them
        self.fetches: list[str] = []
        self.user_not_found = False  # emulate Dify 1.15.0's failing end-user lookup
        self._conversations: dict[str, str] = {}  # conversation id -> app id
        self._lock = threading.Lock()

    # -- configuration -------------------------------------------------------------
    @classmethod
    def from_yaml(cls, path: str | Path) -> Workspace:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        apps = []
        for item in doc.get("apps", []):
            script = Script(**(item.get("script") or {}))
            apps.append(
                App(
                    id=item["id"],
                    mode=item["mode"],
                    name=item.get("name", item["id"]),
                    user_input_form=item.get("user_input_form", []),
                    opening_statement=item.get("opening_statement", ""),
                    script=script,
                )
            )
        storage = Storage(int(doc.get("storage_quota", DEFAULT_QUOTA)))
        workspace = cls(apps, storage=storage)
        workspace.user_not_found = bool(doc.get("user_not_found", False))
        return workspace

    def add_app(self, app: App) -> App:
        self.apps[app.id] = app
        return app

    def app(self, app_id: str) -> App:
        return self.apps[app_id]

    # -- dispatch --------------------------------------------------------------------
    def answer(
        self, invoke_type: str, request: Mapping[str, Any], *, user_id: str = ""
    ) -> Iterator[dict]:
        """Yield the plugin's ``backwards_response`` payloads (event/message/data), ``end`` last.

        Each ``data`` is what the plugin gets after the daemon's Go re-encoding.
        """
        try:
            if invoke_type == "app":
                for chunk in self.run_app(request, user_id=user_id):
                    yield {"event": "response", "message": "stream", "data": chunk}
            elif invoke_type == "fetch_app":
                data = go_reencode(self.fetch_app(request))
                yield {"event": "response", "message": "struct", "data": data}
            elif invoke_type == "storage":
                data = go_reencode(self.storage.handle(request))
                yield {"event": "response", "message": "struct", "data": data}
            else:
                raise InvocationFailed(f"unsupported invoke type: {invoke_type}")
        except InvocationFailed as failure:
            yield {"event": "error", "message": str(failure), "data": None}
        yield {"event": "end", "message": "", "data": None}

    def fetch_app(self, request: Mapping[str, Any]) -> dict[str, Any]:
        app_id = str(request.get("app_id") or "")
        self.fetches.append(app_id)
        app = self.apps.get(app_id)
        if app is None:
            raise InvocationFailed(inner_api_error("app not found"))
        return app.parameters()

    # -- app runs --------------------------------------------------------------------
    def run_app(self, request: Mapping[str, Any], *, user_id: str = "") -> Iterator[dict]:
        """Validate like Dify, record the invocation, then yield the app's dicts.

        The dicts are as the plugin receives them (after :func:`go_reencode`), recorded in
        :attr:`emitted`; :meth:`run_app_raw` yields them as Dify sends them (recorded in
        :attr:`sent`: Dify's key order, what Dify's own Service API would write).
        """
        raw = self.run_app_raw(request, user_id=user_id)
        return self._recorded((go_reencode(chunk) for chunk in raw), self.emitted)

    def run_app_raw(self, request: Mapping[str, Any], *, user_id: str = "") -> Iterator[dict]:
        """The app's dicts as Dify's inner API sends them (before the daemon's hop), recorded
        in :attr:`sent` (one list per invocation that yielded anything)."""
        return self._recorded(self._run_app_raw(request, user_id=user_id), self.sent)

    def _recorded(self, chunks: Iterator[dict], log: list[list[dict[str, Any]]]) -> Iterator[dict]:
        """``chunks``, each also kept in a list of its own in ``log`` from the first one on."""
        kept: list[dict[str, Any]] | None = None
        for chunk in chunks:
            if kept is None:
                kept = []
                with self._lock:
                    log.append(kept)
            kept.append(chunk)
            yield chunk

    def _run_app_raw(self, request: Mapping[str, Any], *, user_id: str = "") -> Iterator[dict]:
        if not isinstance(request.get("inputs"), dict):
            raise InvocationFailed(inner_api_error("invalid payload: inputs must be an object"))
        invocation = Invocation(
            app_id=str(request.get("app_id") or ""),
            query=str(request.get("query") or ""),
            inputs=dict(request["inputs"]),
            response_mode=str(request.get("response_mode") or ""),
            conversation_id=str(request.get("conversation_id") or ""),
            user=str(request.get("user") or ""),
            user_id=user_id,
            tenant_id=self.tenant_id,
        )
        with self._lock:
            self.invocations.append(invocation)
        app = self.apps.get(invocation.app_id)
        if app is None:
            raise InvocationFailed(inner_api_error("app not found"))
        script = app.script
        if self.user_not_found:
            raise InvocationFailed(USER_NOT_FOUND)
        if script.raise_before is not None:
            raise InvocationFailed(script.raise_before)
        if app.mode in CHAT_MODES and not invocation.query:
            raise InvocationFailed(inner_api_error("missing query"))
        if app.mode == "agent-chat" and invocation.response_mode == "blocking":
            raise InvocationFailed(inner_api_error("Agent Chat App does not support blocking mode"))
        conversation_id = invocation.conversation_id
        if app.mode in CHAT_MODES and conversation_id:
            if self._conversations.get(conversation_id) != app.id:
                # Dify raises ConversationNotExistsError() with no text (verify)
                raise InvocationFailed(inner_api_error(""))
            # a continued conversation keeps its first inputs: no validation
        else:
            self._check_inputs(app, invocation.inputs)
        if app.mode in CHAT_MODES and not conversation_id:
            conversation_id = str(uuid.uuid4())
            with self._lock:
                self._conversations[conversation_id] = app.id
        run = _Run(app, invocation, conversation_id)
        if invocation.response_mode == "blocking":
            yield run.blocking()
            return
        for index, event in enumerate(run.stream()):
            if script.fail_after is not None and index == script.fail_after:
                raise InvocationFailed("read app failed: request failed: upstream connection reset")
            yield event

    def forget_conversation(self, conversation_id: str) -> None:
        """Make a conversation stale, as if deleted in Dify."""
        with self._lock:
            self._conversations.pop(conversation_id, None)

    @staticmethod
    def _check_inputs(app: App, inputs: Mapping[str, Any]) -> None:
        for name, control in app.variables():
            value = inputs.get(name)
            if control.get("required") and (value is None or value == ""):
                raise InvocationFailed(inner_api_error(f"{name} is required in input form"))
            limit = control.get("max_length")
            if isinstance(value, str) and limit and len(value) > int(limit):
                raise InvocationFailed(
                    inner_api_error(f"{name} in input form must be less than {limit} characters")
                )
            options = control.get("options")
            if value and options and control.get("type") == "select" and value not in options:
                raise InvocationFailed(
                    inner_api_error(f"{name} in input form must be one of the following: {options}")
                )


class _Run:
    """One app run: produces Dify's exact stream and blocking dicts."""

    def __init__(self, app: App, invocation: Invocation, conversation_id: str) -> None:
        self.app = app
        self.script = app.script
        self.invocation = invocation
        self.conversation_id = conversation_id
        self.task_id = str(uuid.uuid4())
        self.message_id = str(uuid.uuid4())
        self.workflow_run_id = str(uuid.uuid4())
        self.workflow_id = str(uuid.uuid4())
        self.created_at = int(time.time())
        self.answer = self._render(self.script.answer)
        reasoning = self.script.reasoning
        self.reasoning = None if reasoning is None else self._render(reasoning)
        self.chunks = (
            [self._render(c) for c in self.script.chunks]
            if self.script.chunks is not None
            else _split_words(self.answer)
        )

    def _render(self, template: str) -> str:
        try:
            return template.format(
                query=self.invocation.query,
                inputs=_Defaulting(self.invocation.inputs),
                app_name=self.app.name or self.app.id,
            )
        except (KeyError, IndexError, ValueError, AttributeError):
            return template

    # -- envelopes (generate_response_converter.convert_stream_full_response) ------------
    def _envelope(self, event: str) -> dict[str, Any]:
        mode = self.app.mode
        if mode in CHAT_MODES:
            return {
                "event": event,
                "conversation_id": self.conversation_id,
                "message_id": self.message_id,
                "created_at": self.created_at,
            }
        if mode == "completion":
            return {"event": event, "message_id": self.message_id, "created_at": self.created_at}
        return {"event": event, "workflow_run_id": self.workflow_run_id}

    def _event(self, event: str, **fields: Any) -> dict[str, Any]:
        chunk = self._envelope(event)
        chunk.update({"event": event, "task_id": self.task_id, **fields})
        return chunk

    def _error(self) -> dict[str, Any]:
        chunk = self._envelope("error")
        chunk.update(
            {"code": self.script.error_code, "message": self.script.error_message, "status": 400}
        )
        return chunk

    # -- event sequences ---------------------------------------------------------------
    def events(self) -> list[dict[str, Any]]:
        events = self._mode_events()
        run = {"workflow_run_id": self.workflow_run_id} if self.app.mode in WORKFLOW_MODES else {}
        extra = [
            self._event(str(e.get("event") or ""), **run) | e
            for e in self.script.extra_events or []
        ]
        return [*events[:1], *extra, *events[1:]]

    def _mode_events(self) -> list[dict[str, Any]]:
        mode = self.app.mode
        if mode == "workflow":
            return self._workflow_events()
        if mode == "agent-chat":
            body = [self._agent_thought(1, "")]
            body += [
                self._event("agent_message", id=self.message_id, answer=c) for c in self.chunks
            ]
            return [*body, self._agent_thought(1, self.answer), self._message_end()]
        messages = [
            self._event("message", id=self.message_id, answer=c, from_variable_selector=None)
            for c in self.chunks
        ]
        if self.script.replace_with is not None:
            messages.append(
                self._event(
                    "message_replace", answer=self.script.replace_with, reason="output_moderation"
                )
            )
        if mode == "advanced-chat":
            head = [
                self._workflow_started(),
                *self._node("start", "Start", 1),
                self._node_started("llm", "LLM", 2),
                *self._reasoning_chunks(),
                *messages,
                self._node_finished("llm", "LLM", 2, {"text": self.answer}),
            ]
            if self.script.pause:
                return [*head, *self._pause_events()]
            return [
                *head,
                *self._node("answer", "Answer", 3, {"answer": self.answer}),
                self._workflow_finished({"answer": self.answer}),
                self._message_end(),
            ]
        return [*messages, self._message_end()]

    def stream(self) -> Iterator[dict[str, Any]]:
        if self.script.first_delay:
            time.sleep(self.script.first_delay)
        for index, event in enumerate(self.events()):
            if self.script.error_after is not None and index == self.script.error_after:
                yield self._error()
                return
            if index and self.script.delay:
                time.sleep(self.script.delay)
            yield event

    def blocking(self) -> dict[str, Any]:
        if self.script.first_delay:
            time.sleep(self.script.first_delay)
        if self.script.error_after is not None:
            raise InvocationFailed(
                inner_api_error(self.script.error_message, code=self.script.error_code)
            )
        paused = self.script.pause and self.app.mode in ("workflow", "advanced-chat")
        if self.app.mode == "workflow":
            finished = self._workflow_finished(self._outputs())["data"]
            keys = ("id", "workflow_id", "status", "outputs", "error", "elapsed_time",
                    "total_tokens", "total_steps", "created_at", "finished_at")  # fmt: skip
            data = {k: finished[k] for k in keys}
            if paused:  # WorkflowAppPausedBlockingResponse
                pause = self._paused_data()
                data.update(status="paused", outputs={}, error=None, finished_at=None)
                data.update({k: pause[k] for k in ("elapsed_time", "total_tokens", "total_steps")})
                data.update(paused_nodes=pause["paused_nodes"], reasons=pause["reasons"])
            return {"task_id": self.task_id, "workflow_run_id": self.workflow_run_id, "data": data}
        body: dict[str, Any] = {
            "event": "workflow_paused" if paused else "message",
            "task_id": self.task_id,
            "id": self.message_id,
            "message_id": self.message_id,
        }
        if self.app.mode in CHAT_MODES:
            body["conversation_id"] = self.conversation_id
        replaced = self.script.replace_with
        body.update(
            mode=self.app.mode,
            answer=self.answer if replaced is None else replaced,
            metadata=self._metadata(),
            created_at=self.created_at,
        )
        if paused:  # AdvancedChatPausedBlockingResponse, converted
            body["metadata"] = {}  # no message_end before a pause (inference: verify on Dify)
            pause = self._paused_data()
            body["workflow_run_id"] = self.workflow_run_id
            body["data"] = {  # AdvancedChatPausedBlockingResponse.Data.model_dump()
                **{k: body[k] for k in ("id", "mode", "conversation_id", "message_id")},
                "workflow_run_id": self.workflow_run_id,
                **{k: body[k] for k in ("answer", "metadata", "created_at")},
                **{k: pause[k] for k in PAUSED_KEYS},
            }
        return body

    # -- pieces --------------------------------------------------------------------------
    def _outputs(self) -> dict[str, Any]:
        if self.script.outputs is None:
            return {"text": self.answer}
        return {
            k: self._render(v) if isinstance(v, str) else v for k, v in self.script.outputs.items()
        }

    def _metadata(self) -> dict[str, Any]:
        prompt, completion = self.script.usage_tokens
        usage = {
            "prompt_tokens": prompt,
            "prompt_unit_price": "0.001",
            "prompt_price_unit": "0.001",
            "prompt_price": "0.0000120",
            "completion_tokens": completion,
            "completion_unit_price": "0.002",
            "completion_price_unit": "0.001",
            "completion_price": "0.0000160",
            "total_tokens": prompt + completion,
            "total_price": "0.0000280",
            "currency": "USD",
            "latency": 0.42,
        }
        reasoning = {REASONING_NODE: self.reasoning} if self.reasoning is not None else {}
        return {  # TaskStateMetadata.model_dump(), field order kept
            "annotation_reply": None,
            "retriever_resources": [],
            "usage": usage,
            "reasoning": reasoning,  # Dify 1.15: reasoning text per LLM node id
        }

    def _message_end(self) -> dict[str, Any]:
        return self._event("message_end", id=self.message_id, metadata=self._metadata(), files=None)

    def _agent_thought(self, position: int, thought: str) -> dict[str, Any]:
        return self._event(
            "agent_thought",
            id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.message_id}/{position}")),
            position=position,
            thought=thought,
            observation="",
            tool="",
            tool_labels={},
            tool_input="",
            message_files=[],
        )

    def _workflow_started(self) -> dict[str, Any]:
        return self._event(
            "workflow_started",
            workflow_run_id=self.workflow_run_id,
            data={
                "id": self.workflow_run_id,
                "workflow_id": self.workflow_id,
                "inputs": self.invocation.inputs,
                "created_at": self.created_at,
                "reason": "initial",
            },
        )

    def _node_started(self, node_type: str, title: str, index: int) -> dict[str, Any]:
        return self._event(
            "node_started",
            workflow_run_id=self.workflow_run_id,
            data={
                "id": f"{self.workflow_run_id}-{index}",
                "node_id": f"{1700000000000 + index}",
                "node_type": node_type,
                "title": title,
                "index": index,
                "predecessor_node_id": None if index == 1 else f"{1700000000000 + index - 1}",
                "inputs": None,
                "inputs_truncated": False,
                "created_at": self.created_at,
                "extras": {},
                "iteration_id": None,
                "loop_id": None,
                "agent_strategy": None,
            },
        )

    def _node_finished(
        self, node_type: str, title: str, index: int, outputs: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """``NodeFinishStreamResponse.Data`` in its field order (no ``extras``)."""
        started = self._node_started(node_type, title, index)["data"]
        head = ("id", "node_id", "node_type", "title", "index", "predecessor_node_id", "inputs",
                "inputs_truncated")  # fmt: skip
        data = {key: started[key] for key in head}
        data.update(
            process_data=None,
            process_data_truncated=False,
            outputs=outputs or {},
            outputs_truncated=False,
            status="succeeded",
            error=None,
            elapsed_time=0.01,
            execution_metadata=None,
            created_at=self.created_at,
            finished_at=self.created_at,
            files=[],
            iteration_id=None,
            loop_id=None,
        )
        return self._event("node_finished", workflow_run_id=self.workflow_run_id, data=data)

    def _node(
        self, node_type: str, title: str, index: int, outputs: dict[str, Any] | None = None
    ) -> list[dict]:
        return [
            self._node_started(node_type, title, index),
            self._node_finished(node_type, title, index, outputs),
        ]

    def _workflow_finished(self, outputs: dict[str, Any]) -> dict[str, Any]:
        failed = self.script.workflow_status == "failed"
        return self._event(
            "workflow_finished",
            workflow_run_id=self.workflow_run_id,
            data={
                "id": self.workflow_run_id,
                "workflow_id": self.workflow_id,
                "status": self.script.workflow_status,
                "outputs": None if failed else outputs,
                "error": self.script.error_message if failed else None,
                "elapsed_time": 0.42,
                "total_tokens": sum(self.script.usage_tokens),
                "total_steps": 3,
                "created_by": {"id": self.invocation.user_id or "end-user", "user": "DEFAULT-USER"},
                "created_at": self.created_at,
                "finished_at": self.created_at,
                "exceptions_count": 0,
                "files": [],
            },
        )

    def _workflow_events(self) -> list[dict[str, Any]]:
        outputs = self._outputs()
        text_chunks = [
            self._event(
                "text_chunk",
                workflow_run_id=self.workflow_run_id,
                data={"text": c, "from_variable_selector": ["1700000000003", "text"]},
            )
            for c in self.chunks
        ]
        head = [
            self._workflow_started(),
            *self._node("start", "Start", 1),
            self._node_started("llm", "LLM", 2),
            *self._reasoning_chunks(),
            *text_chunks,
            self._node_finished("llm", "LLM", 2, {"text": self.answer}),
        ]
        if self.script.pause:
            return [*head, *self._pause_events()]
        return [*head, *self._node("end", "End", 3, outputs), self._workflow_finished(outputs)]

    # -- Dify 1.15: reasoning and Human Input pauses ------------------------------------------
    def _reasoning_chunks(self) -> list[dict[str, Any]]:
        """``reasoning_chunk`` events (the LLM node's "separated" reasoning), a final one last."""
        if self.reasoning is None:
            return []
        message_id = self.message_id if self.app.mode == "advanced-chat" else None
        pieces = [*_split_words(self.reasoning), ""]
        return [
            self._event(  # no workflow_run_id of its own (a workflow's envelope has one)
                "reasoning_chunk",
                data={
                    "message_id": message_id,
                    "reasoning": piece,
                    "node_id": REASONING_NODE,
                    "is_final": index == len(pieces) - 1,
                },
            )
            for index, piece in enumerate(pieces)
        ]

    @property
    def form_id(self) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.workflow_run_id}/form"))

    def _paused_data(self) -> dict[str, Any]:
        """``WorkflowPauseStreamResponse.Data`` (outputs always {} for SERVICE_API)."""
        return {
            "workflow_run_id": self.workflow_run_id,
            "paused_nodes": [HUMAN_INPUT_NODE],
            "outputs": {},
            "reasons": [
                {
                    "TYPE": "human_input_required",
                    "form_id": self.form_id,
                    "node_id": HUMAN_INPUT_NODE,
                    "form_token": self.form_token,
                    "expiration_time": self.created_at + 86400,
                }
            ],
            "status": "paused",
            "created_at": self.created_at,
            "elapsed_time": 0.5,
            "total_tokens": sum(self.script.usage_tokens),
            "total_steps": 3,
        }

    @property
    def form_token(self) -> str:
        return uuid.uuid5(uuid.NAMESPACE_URL, f"{self.workflow_run_id}/token").hex[:22]

    def _pause_events(self) -> list[dict[str, Any]]:
        """The Human Input node starts, asks for its form, and the run pauses (stream ends)."""
        started = self._node_started("human-input", "Approval", 3)
        started["data"]["node_id"] = HUMAN_INPUT_NODE
        required = self._event(
            "human_input_required",
            workflow_run_id=self.workflow_run_id,
            data={
                "form_id": self.form_id,
                "node_id": HUMAN_INPUT_NODE,
                "node_title": "Approval",
                "form_content": "Please review the draft and approve it.",
                "inputs": [
                    {"output_variable_name": "comment", "type": "paragraph", "default": None}
                ],
                "actions": [
                    {"id": "approve", "title": "Approve", "button_style": "primary"},
                    {"id": "reject", "title": "Reject", "button_style": "default"},
                ],
                "display_in_ui": True,
                "form_token": self.form_token,
                "resolved_default_values": {},
                "expiration_time": self.created_at + 86400,
            },
        )
        paused = self._event(
            "workflow_paused", workflow_run_id=self.workflow_run_id, data=self._paused_data()
        )
        return [started, required, paused]


HUMAN_INPUT_NODE = "1700000000003"
REASONING_NODE = "1700000000002"  # the LLM node whose reasoning a script streams
PAUSED_KEYS = ("paused_nodes", "reasons", "status", "elapsed_time", "total_tokens", "total_steps")


def human_input_event(name: str) -> dict[str, Any]:
    """``human_input_form_filled`` / ``…_timeout`` payloads, for ``Script.extra_events``."""
    base: dict[str, Any] = {"node_id": HUMAN_INPUT_NODE, "node_title": "Approval"}
    if name == "human_input_form_filled":
        data = {**base, "rendered_content": "Approved.", "action_id": "approve",
                "action_text": "Approve"}  # fmt: skip
    else:
        data = {**base, "expiration_time": 1767225600}
    return {"event": name, "data": data}


class _Defaulting(dict):
    def __missing__(self, key: str) -> str:
        return ""


def _split_words(text: str) -> list[str]:
    """Split into word-sized deltas that concatenate back to ``text``."""
    parts, current = [], ""
    for ch in text:
        current += ch
        if ch == " ":
            parts.append(current)
            current = ""
    if current:
        parts.append(current)
    return parts or [""]


class DirectStorage:
    """``session.storage``'s interface straight over :class:`Storage` (unit tests).

    Errors surface as plain ``Exception(message)``, as the SDK raises them.
    """

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        try:
            return self.storage.handle(request)
        except InvocationFailed as failure:
            raise Exception(str(failure)) from None

    def get(self, key: str) -> bytes:
        return bytes.fromhex(self._call({"opt": "get", "key": key})["data"])

    def set(self, key: str, val: bytes) -> None:
        self._call({"opt": "set", "key": key, "value": val.hex()})

    def delete(self, key: str) -> None:
        self._call({"opt": "del", "key": key})

    def exist(self, key: str) -> bool:
        return bool(self._call({"opt": "exist", "key": key})["data"])
