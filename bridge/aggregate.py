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
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from bridge.errors import BridgeError
from bridge.gateway import AppKind, kind_of_event, mode_of_first_event

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
        if name in ("message", "agent_message"):
            self.answer.append(str(event.get("answer") or ""))
        elif name == "message_replace":
            self.answer = [str(event.get("answer") or "")]
        elif name == "message_end":
            self.metadata = dict(event.get("metadata") or {})
        elif name == "workflow_finished":
            self.workflow = dict(event.get("data") or {})

    def result(self) -> dict[str, Any]:
        if self.kind is AppKind.WORKFLOW:
            data = self.workflow or {}
            return {
                "task_id": self.task_id,
                "workflow_run_id": self.envelope.get("workflow_run_id"),
                "data": {key: data.get(key) for key in WORKFLOW_DATA_KEYS},
            }
        message_id = self.envelope.get("message_id")
        body: dict[str, Any] = {
            "event": "message",
            "task_id": self.task_id,
            "id": message_id,
            "message_id": message_id,
        }
        if self.kind is AppKind.CHAT:
            body["conversation_id"] = self.envelope.get("conversation_id")
        body.update(
            mode=self.mode or "completion",
            answer="".join(self.answer),
            metadata=self.metadata,
            created_at=self.envelope.get("created_at"),
        )
        return body


def aggregate(events: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    aggregator = Aggregator()
    for event in events:
        aggregator.feed(event)
    return aggregator.result()
