"""Blocking responses built from a stream of app events (Dify's exact blocking shapes).

The gateway always streams; a blocking caller gets the object Dify's own blocking mode
returns (protocol.md §1.4):

- chat / agent-chat / advanced-chat: ``event, task_id, id, message_id, conversation_id,
  mode, answer, metadata, created_at``;
- completion: the same without ``conversation_id``;
- workflow: ``task_id, workflow_run_id, data{id, workflow_id, status, outputs, error,
  elapsed_time, total_tokens, total_steps, created_at, finished_at}``.

An ``error`` event ends the run with a :class:`~bridge.errors.BridgeError` carrying its
code, message and status, as Dify's blocking mode answers with that error.

Dify 1.15+ (daemon-notes §D): a run a Human Input node pauses ends with ``workflow_paused``
(after ``human_input_required``); its blocking shape is Dify's paused one — a chatflow's
``event: "workflow_paused"`` with ``workflow_run_id`` and ``data`` (the message's fields,
then ``paused_nodes, reasons, status, elapsed_time, total_tokens, total_steps``), a
workflow's ``data.status: "paused"`` with ``paused_nodes`` and ``reasons``.
:attr:`Aggregator.paused` and :func:`is_paused` tell callers (webhook replies, platform
replies) the run is waiting for input. ``reasoning_chunk`` text is collected apart from
the answer (:attr:`Aggregator.reasoning`).
Events this module does not know are ignored, so future events never break an answer.

Keys are in Dify's order (:mod:`bridge.app.dify_order`): events arrive with sorted keys, so
``metadata`` and the pause ``reasons`` are put back in the order Dify writes them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from bridge.app.dify_order import PAUSE_REASON, metadata_in_dify_order, reorder
from bridge.app.gateway import AppKind, kind_of_event, mode_of_first_event
from bridge.errors import BridgeError
from bridge.transport.sse import with_keepalive

WORKFLOW_DATA_KEYS = (
    "id",
    "workflow_id",
    "status",
    "outputs",
    "error",
    "elapsed_time",
    "total_tokens",
    "total_steps",
    "created_at",
    "finished_at",
)
PAUSED_TEXT = (
    "The app is waiting for human input: a Human Input step paused the run. "
    "It continues once someone submits the form in Dify."
)


def reasoning_of(metadata: Mapping[str, Any]) -> str:
    """``message_end.metadata.reasoning`` as text: Dify 1.15 keeps it per LLM node id
    (``{node_id: text}``, in node order once the daemon sorted the keys); a plain string is
    taken as it is."""
    value = metadata.get("reasoning")
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return "\n\n".join(text for text in value.values() if isinstance(text, str) and text)
    return ""


def error_from_event(event: Mapping[str, Any]) -> BridgeError:
    status = event.get("status")
    return BridgeError(
        status if isinstance(status, int) and 400 <= status <= 599 else 500,
        str(event.get("code") or "internal_server_error"),
        str(event.get("message") or "The app failed."),
    )


class Aggregator:
    """Feed events one by one; :meth:`result` gives the blocking body."""

    def __init__(self) -> None:
        self.kind: AppKind | None = None
        self.mode: str | None = None
        self.answer: list[str] = []
        self.envelope: dict[str, Any] = {}
        self.task_id: str | None = None
        self.metadata: dict[str, Any] = {}
        self.workflow: dict[str, Any] | None = None
        self.replaced = False  # output moderation replaced the answer
        self.reasoning: list[str] = []  # reasoning_chunk text (never part of the answer)
        self.workflow_id: str | None = None
        self.pause: dict[str, Any] | None = None  # workflow_paused.data
        self.forms: list[dict[str, Any]] = []  # human_input_required.data, in order

    @property
    def paused(self) -> bool:
        """The run stopped at a Human Input node and waits for someone to fill its form."""
        return self.pause is not None

    @property
    def reasoning_text(self) -> str:
        """The model's reasoning: streamed chunks, else ``message_end.metadata.reasoning``."""
        if self.reasoning:
            return "".join(self.reasoning)
        return reasoning_of(self.metadata)

    def feed(self, event: Mapping[str, Any]) -> None:
        name = event.get("event")
        if name == "error":
            raise error_from_event(event)
        if self.kind is None:
            self.kind = kind_of_event(event)
            self.mode = mode_of_first_event(event)
        for key in ("conversation_id", "message_id", "created_at", "workflow_run_id"):
            if key in event and key not in self.envelope:
                self.envelope[key] = event[key]
        if self.task_id is None and event.get("task_id"):
            self.task_id = event["task_id"]
        if self.mode == "chat" and str(name).startswith("agent_"):
            self.mode = "agent-chat"
        if name in ("message", "agent_message"):
            self.answer.append(str(event.get("answer") or ""))
        elif name == "message_replace":
            self.answer = [str(event.get("answer") or "")]
            self.replaced = True
        elif name == "message_end":
            self.metadata = dict(event.get("metadata") or {})
        else:
            self._feed_workflow(str(name), event.get("data"))

    def _feed_workflow(self, name: str, data: object) -> None:
        """Workflow-level events (their payload is ``data``); others are ignored."""
        fields = dict(data) if isinstance(data, Mapping) else {}
        if name == "workflow_finished":
            self.workflow = fields
        elif name == "workflow_started":
            self.workflow_id = fields.get("workflow_id") or self.workflow_id
        elif name == "reasoning_chunk":
            self.reasoning.append(str(fields.get("reasoning") or ""))
        elif name == "human_input_required":
            self.forms.append(fields)
        elif name == "workflow_paused":
            self.pause = fields

    def _paused_workflow_data(self) -> dict[str, Any]:
        """``WorkflowAppPausedBlockingResponse.Data`` from the ``workflow_paused`` event."""
        pause = self.pause or {}
        run_id = pause.get("workflow_run_id") or self.envelope.get("workflow_run_id")
        data: dict[str, Any] = {
            "id": run_id,
            "workflow_id": self.workflow_id,
            "status": pause.get("status") or "paused",
            "outputs": pause.get("outputs") or {},
            "error": None,
            "elapsed_time": pause.get("elapsed_time"),
            "total_tokens": pause.get("total_tokens"),
            "total_steps": pause.get("total_steps"),
            "created_at": pause.get("created_at"),
            "finished_at": None,
        }
        data.update(paused_nodes=pause.get("paused_nodes") or [], reasons=self._reasons())
        return data

    def _reasons(self) -> list[Any]:
        """``workflow_paused.data.reasons``, each in Dify's order."""
        reasons = (self.pause or {}).get("reasons") or []
        return [reorder(r, PAUSE_REASON) if isinstance(r, Mapping) else r for r in reasons]

    def result(self) -> dict[str, Any]:
        if self.kind is AppKind.WORKFLOW:
            if self.pause is not None:
                data = self._paused_workflow_data()
            else:
                finished = self.workflow or {}
                data = {key: finished.get(key) for key in WORKFLOW_DATA_KEYS}
            return {
                "task_id": self.task_id,
                "workflow_run_id": self.envelope.get("workflow_run_id"),
                "data": data,
            }
        message_id = self.envelope.get("message_id")
        body: dict[str, Any] = {
            "event": "workflow_paused" if self.pause is not None else "message",
            "task_id": self.task_id,
            "id": message_id,
            "message_id": message_id,
        }
        if self.kind is AppKind.CHAT:
            body["conversation_id"] = self.envelope.get("conversation_id")
        body.update(
            mode=self.mode or "completion",
            answer="".join(self.answer),
            metadata=metadata_in_dify_order(self.metadata),
            created_at=self.envelope.get("created_at"),
        )
        if self.pause is not None:  # AdvancedChatPausedBlockingResponse, as Dify converts it
            pause = self.pause
            run_id = pause.get("workflow_run_id") or self.envelope.get("workflow_run_id")
            body["workflow_run_id"] = run_id
            body["data"] = {  # its Data's model_dump: the message, then the pause
                "id": message_id,
                "mode": body["mode"],
                "conversation_id": body.get("conversation_id"),
                "message_id": message_id,
                "workflow_run_id": run_id,
                "answer": body["answer"],
                "metadata": body["metadata"],
                "created_at": body["created_at"],
                "paused_nodes": pause.get("paused_nodes") or [],
                "reasons": self._reasons(),
                "status": pause.get("status") or "paused",
                "elapsed_time": pause.get("elapsed_time"),
                "total_tokens": pause.get("total_tokens"),
                "total_steps": pause.get("total_steps"),
            }
        return body


def aggregate(events: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    aggregator = Aggregator()
    for event in events:
        aggregator.feed(event)
    return aggregator.result()


def is_paused(result: Mapping[str, Any]) -> bool:
    """Whether a blocking result (Dify's or ours) is a run paused for human input."""
    if result.get("event") == "workflow_paused":
        return True
    data = result.get("data")
    return "answer" not in result and isinstance(data, Mapping) and data.get("status") == "paused"


def run_status(result: Mapping[str, Any]) -> str:
    """``paused``, a workflow's own status, or ``succeeded`` for a finished message."""
    if is_paused(result):
        return "paused"
    data = result.get("data")
    if "answer" not in result and isinstance(data, Mapping):
        return str(data.get("status") or "succeeded")
    return "succeeded"


def outputs_text(outputs: Mapping[str, Any] | None) -> str:
    """A workflow's text: its single output, else ``outputs.result``, else JSON of all."""
    outputs = outputs or {}
    if len(outputs) == 1:
        value = next(iter(outputs.values()))
    elif "result" in outputs:
        value = outputs["result"]
    else:
        return json.dumps(outputs, ensure_ascii=False)
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def answer_text(result: Mapping[str, Any]) -> str:
    """The text of a blocking result: the answer, or the workflow's outputs as text.

    A paused run says it waits for input (after any partial answer). A workflow that did
    not succeed raises, with its error.
    """
    if is_paused(result):
        partial = str(result.get("answer") or "").strip()
        return f"{partial}\n\n{PAUSED_TEXT}" if partial else PAUSED_TEXT
    if "workflow_run_id" in result and "answer" not in result:
        data = result.get("data") or {}
        if data.get("status") not in ("succeeded", "partial-succeeded"):
            raise BridgeError(
                400, "workflow_failed", str(data.get("error") or "The workflow did not succeed.")
            )
        return outputs_text(data.get("outputs"))
    return str(result.get("answer") or "")


def run_blocking(
    events: Iterator[Mapping[str, Any]], *, timeout: float | None = None
) -> dict[str, Any]:
    """Aggregate ``events``; with ``timeout``, give up with a 504 once it has passed.

    The deadline is checked between events and during silences (the stream is drained on a
    helper thread), so a slow app cannot hold the caller past it.
    """
    aggregator = Aggregator()
    if timeout is None:
        for event in events:
            aggregator.feed(event)
        return aggregator.result()
    deadline = time.monotonic() + timeout
    tick = object()
    stream = with_keepalive(events, min(1.0, timeout), tick)
    try:
        for item in stream:
            if time.monotonic() > deadline:
                raise BridgeError(
                    504, "app_timeout", f"The app did not finish within {timeout:g} seconds."
                )
            if item is not tick:
                aggregator.feed(item)  # type: ignore[arg-type]
    finally:
        stream.close()
    return aggregator.result()
