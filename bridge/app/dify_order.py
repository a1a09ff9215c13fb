"""Dify's key order for Service-API events and blocking bodies (Dify 1.15.0).

Dify's own Service API writes each stream event as the converter builds it: the app type's
envelope (chat, agent-chat, chatflow: ``event, conversation_id, message_id, created_at``;
completion: ``event, message_id, created_at``; workflow: ``event, workflow_run_id``), then
``task_id``, then the stream response model's own fields in declaration order, nested
``data`` objects in their model's order; an ``error`` event is the envelope plus ``code``,
``message``, ``status`` (``status`` before ``message`` for the codes Dify's error table gives
no message of its own), and no ``task_id``. The plugin daemon re-encodes every event through
a Go map before the plugin sees it, so events arrive with their keys sorted alphabetically.

:func:`in_dify_order` puts them back: the keys a table knows (one precomputed per app kind
and event, from Dify's models) in Dify's order, then any key the table does not know (a
field a newer Dify added) in arrival order. An event the table does not know keeps its
arrival order entirely, and values are never touched. Objects whose keys are the app's
(``inputs``, ``outputs``, ``process_data``, …) keep their arrival order: Dify's order for
them is the app's, which the daemon's hop erased. :func:`framer` writes a stream's frames:
keys in this order, JSON as Dify's orjson writes it (:func:`~bridge.transport.sse.dify_frame`).

Sources, ``langgenius/dify`` 1.15.0 (``3aa26fb``; ``api/`` omitted), tables written from them:

- envelopes: ``core/app/apps/{chat,agent_chat}/generate_response_converter.py:76-88``,
  ``completion/…:75-86``, ``advanced_chat/…:98-110``, ``workflow/…:63-76``; error dicts
  ``core/app/apps/base_app_generate_response_converter.py:113-148``;
- models: ``core/app/entities/task_entities.py:98-965`` (``metadata``: ``TaskStateMetadata``
  ``:26-30``); ``created_by``: ``core/app/apps/common/workflow_response_converter.py:97-107``;
  ``message_end.files``: ``core/app/task_pipeline/message_file_utils.py:83-94``; retriever
  resources: ``core/rag/entities/citation_metadata.py:6-25``; pause reasons:
  ``core/workflow/human_input_policy.py:91-110`` over graphon 0.5.3's
  ``entities/pause_reason.py:15-39``; form inputs and actions: graphon
  ``nodes/human_input/entities.py:32-205``; usage: graphon
  ``model_runtime/entities/llm_entities.py:90-106``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bridge.app.gateway import AppKind
from bridge.transport.sse import data_frame, dify_frame


@dataclass(frozen=True, slots=True)
class Order:
    """The key order of one object: ``keys`` first, and how to order nested values.

    ``nested`` names keys whose value is an object (or a list of objects) with an order of
    its own.
    """

    keys: tuple[str, ...]
    nested: tuple[tuple[str, Order], ...] = ()
    # (key, order): an object holding ``key`` is another model, written in ``order``
    unless: tuple[str, Order] | None = None


def reorder(obj: Mapping[str, Any], order: Order) -> dict[str, Any]:
    """``obj`` with ``order``'s keys first (in that order), then its other keys as they came."""
    if order.unless is not None and order.unless[0] in obj:
        order = order.unless[1]
    out = {key: obj[key] for key in order.keys if key in obj}
    if len(out) != len(obj):
        for key, value in obj.items():
            if key not in out:
                out[key] = value
    for key, inner in order.nested:
        if key in out:
            out[key] = _nested(out[key], inner)  # an existing key keeps its place
    return out


def _nested(value: Any, order: Order) -> Any:
    if isinstance(value, dict):
        return reorder(value, order)
    if isinstance(value, list):
        return [reorder(item, order) if isinstance(item, dict) else item for item in value]
    return value


# -- Dify's models (api/core/app/entities/task_entities.py at 1.15.0) ------------------------

USAGE = Order(
    (
        "prompt_tokens",
        "prompt_unit_price",
        "prompt_price_unit",
        "prompt_price",
        "completion_tokens",
        "completion_unit_price",
        "completion_price_unit",
        "completion_price",
        "total_tokens",
        "total_price",
        "currency",
        "latency",
        "time_to_first_token",
        "time_to_generate",
    )
)
RETRIEVER_RESOURCE = Order(
    (
        "position",
        "dataset_id",
        "dataset_name",
        "document_id",
        "document_name",
        "data_source_type",
        "segment_id",
        "retriever_from",
        "score",
        "hit_count",
        "word_count",
        "segment_position",
        "index_node_hash",
        "content",
        "page",
        "doc_metadata",
        "title",
        "files",
        "summary",
    )
)
ANNOTATION_REPLY = Order(("id", "account"), (("account", Order(("id", "name"))),))
METADATA = Order(
    ("annotation_reply", "retriever_resources", "usage", "reasoning"),
    (
        ("annotation_reply", ANNOTATION_REPLY),
        ("retriever_resources", RETRIEVER_RESOURCE),
        ("usage", USAGE),
    ),
)
FILE = Order(  # graphon's File.to_dict(): its model fields, then related_id and url
    (
        "dify_model_identity",
        "id",
        "type",
        "transfer_method",
        "remote_url",
        "reference",
        "filename",
        "extension",
        "mime_type",
        "size",
        "related_id",
        "url",
    )
)
MESSAGE_FILE_INFO = Order(  # a chat message's files; a chatflow's are File.to_dict()s
    (
        "related_id",
        "extension",
        "filename",
        "size",
        "mime_type",
        "transfer_method",
        "type",
        "url",
        "upload_file_id",
        "remote_url",
    ),
    unless=("dify_model_identity", FILE),
)
USER_ACTION = Order(("id", "title", "button_style"))
_SOURCE = Order(("type", "selector", "value"))
FORM_INPUT = Order(  # the union of graphon's form input configs, each a subsequence of it
    (
        "output_variable_name",
        "allowed_file_types",
        "allowed_file_extensions",
        "allowed_file_upload_methods",
        "type",
        "default",
        "option_source",
        "number_limits",
    ),
    (("default", _SOURCE), ("option_source", _SOURCE)),
)
PAUSE_REASON = Order(
    (
        "TYPE",
        "form_id",
        "form_content",
        "inputs",
        "actions",
        "node_id",
        "node_title",
        "resolved_default_values",
        "form_token",
        "approval_channels",
        "expiration_time",
    ),
    (("inputs", FORM_INPUT), ("actions", USER_ACTION)),
)
CREATED_BY = Order(("id", "name", "email", "user"))  # an account's, or an end user's

_NODE_HEAD = ("id", "node_id", "node_type", "title", "index", "predecessor_node_id", "inputs")
_NODE_RESULT = (
    "inputs_truncated",
    "process_data",
    "process_data_truncated",
    "outputs",
    "outputs_truncated",
    "status",
    "error",
    "elapsed_time",
    "execution_metadata",
    "created_at",
    "finished_at",
    "files",
    "iteration_id",
    "loop_id",
)
_FILES = (("files", FILE),)
_STEP_HEAD = ("id", "node_id", "node_type", "title")
_STEP_STARTED = (*_STEP_HEAD, "created_at", "extras", "metadata", "inputs", "inputs_truncated")
_STEP_COMPLETED = (
    *_STEP_HEAD,
    "outputs",
    "outputs_truncated",
    "created_at",
    "extras",
    "inputs",
    "inputs_truncated",
    "status",
    "error",
    "elapsed_time",
    "total_tokens",
    "execution_metadata",
    "finished_at",
    "steps",
)

# event -> (its model's fields after ``event, task_id``, the order of its ``data`` or None,
#           further nested orders of top-level fields)
_RUN = "workflow_run_id"
_EVENTS: dict[str, tuple[tuple[str, ...], Order | None, tuple[tuple[str, Order], ...]]] = {
    "message": (("id", "answer", "from_variable_selector"), None, ()),
    "tts_message": (("audio",), None, ()),
    "tts_message_end": (("audio",), None, ()),
    "message_end": (
        ("id", "metadata", "files"),
        None,
        (("metadata", METADATA), ("files", MESSAGE_FILE_INFO)),
    ),
    "message_file": (("id", "type", "belongs_to", "url"), None, ()),
    "message_replace": (("answer", "reason"), None, ()),
    "agent_thought": (
        (
            "id",
            "position",
            "thought",
            "observation",
            "tool",
            "tool_labels",
            "tool_input",
            "message_files",
        ),
        None,
        (),
    ),
    "agent_message": (("id", "answer"), None, ()),
    "workflow_started": (
        (_RUN, "data"),
        Order(("id", "workflow_id", "inputs", "created_at", "reason")),
        (),
    ),
    "workflow_finished": (
        (_RUN, "data"),
        Order(
            (
                "id",
                "workflow_id",
                "status",
                "outputs",
                "error",
                "elapsed_time",
                "total_tokens",
                "total_steps",
                "created_by",
                "created_at",
                "finished_at",
                "exceptions_count",
                "files",
            ),
            (("created_by", CREATED_BY), ("files", FILE)),
        ),
        (),
    ),
    "workflow_paused": (
        (_RUN, "data"),
        Order(
            (
                "workflow_run_id",
                "paused_nodes",
                "outputs",
                "reasons",
                "status",
                "created_at",
                "elapsed_time",
                "total_tokens",
                "total_steps",
            ),
            (("reasons", PAUSE_REASON),),
        ),
        (),
    ),
    "human_input_required": (
        (_RUN, "data"),
        Order(
            (
                "form_id",
                "node_id",
                "node_title",
                "form_content",
                "inputs",
                "actions",
                "display_in_ui",
                "form_token",
                "approval_channels",
                "resolved_default_values",
                "expiration_time",
            ),
            (("inputs", FORM_INPUT), ("actions", USER_ACTION)),
        ),
        (),
    ),
    "human_input_form_filled": (
        (_RUN, "data"),
        Order(
            (
                "node_id",
                "node_title",
                "rendered_content",
                "action_id",
                "action_text",
                "submitted_data",
            )
        ),
        (),
    ),
    "human_input_form_timeout": (
        (_RUN, "data"),
        Order(("node_id", "node_title", "expiration_time")),
        (),
    ),
    "node_started": (
        (_RUN, "data"),
        Order(
            (
                *_NODE_HEAD,
                "inputs_truncated",
                "created_at",
                "extras",
                "iteration_id",
                "loop_id",
                "agent_strategy",
            ),
            (("agent_strategy", Order(("name", "icon"))),),
        ),
        (),
    ),
    "node_finished": ((_RUN, "data"), Order((*_NODE_HEAD, *_NODE_RESULT), _FILES), ()),
    "node_retry": (
        (_RUN, "data"),
        Order((*_NODE_HEAD, *_NODE_RESULT, "retry_index"), _FILES),
        (),
    ),
    "iteration_started": ((_RUN, "data"), Order(_STEP_STARTED), ()),
    "iteration_next": (
        (_RUN, "data"),
        Order((*_STEP_HEAD, "index", "created_at", "extras")),
        (),
    ),
    "iteration_completed": ((_RUN, "data"), Order(_STEP_COMPLETED), ()),
    "loop_started": ((_RUN, "data"), Order(_STEP_STARTED), ()),
    "loop_next": (
        (_RUN, "data"),
        Order((*_STEP_HEAD, "index", "created_at", "pre_loop_output", "extras")),
        (),
    ),
    "loop_completed": ((_RUN, "data"), Order(_STEP_COMPLETED), ()),
    "text_chunk": (("data",), Order(("text", "from_variable_selector")), ()),
    "text_replace": (("data",), Order(("text",)), ()),
    "reasoning_chunk": (("data",), Order(("message_id", "reasoning", "node_id", "is_final")), ()),
    "agent_log": (
        ("data",),
        Order(
            (
                "node_execution_id",
                "id",
                "label",
                "parent_id",
                "error",
                "status",
                "data",
                "metadata",
                "node_id",
            )
        ),
        (),
    ),
}

KNOWN_EVENTS = frozenset({*_EVENTS, "error"})  # every other event keeps its arrival order

ENVELOPES: dict[AppKind, tuple[str, ...]] = {
    AppKind.CHAT: ("event", "conversation_id", "message_id", "created_at"),
    AppKind.COMPLETION: ("event", "message_id", "created_at"),
    AppKind.WORKFLOW: ("event", "workflow_run_id"),
}
# _error_to_stream_response: these codes' dicts carry no message, so ``message`` is added
# last (``setdefault``); the others are written code, message, status.
STATUS_BEFORE_MESSAGE = frozenset(
    {
        "invalid_param",
        "provider_not_initialize",
        "model_currently_not_support",
        "completion_request_error",
    }
)


def _event_order(kind: AppKind, fields: tuple[str, ...], data: Order | None, nested: Any) -> Order:
    envelope = ENVELOPES[kind]
    keys = (*envelope, "task_id", *(f for f in fields if f not in envelope))
    inner = (*((("data", data),) if data is not None else ()), *nested)
    return Order(keys, inner)


_TABLE: dict[AppKind, dict[str, Order]] = {
    kind: {name: _event_order(kind, *spec) for name, spec in _EVENTS.items()} for kind in AppKind
}
_ERRORS: dict[AppKind, tuple[Order, Order]] = {
    kind: (
        Order((*ENVELOPES[kind], "code", "message", "status")),
        Order((*ENVELOPES[kind], "code", "status", "message")),
    )
    for kind in AppKind
}


def event_order(event: Mapping[str, Any], kind: AppKind) -> Order | None:
    """The order Dify writes ``event`` in for an app of ``kind``; None for an unknown event."""
    name = event.get("event")
    if name == "error":
        orders = _ERRORS[kind]
        return orders[1] if event.get("code") in STATUS_BEFORE_MESSAGE else orders[0]
    return _TABLE[kind].get(name)  # type: ignore[arg-type]


def orderer(kind: AppKind) -> Callable[[Mapping[str, Any]], Mapping[str, Any]]:
    """:func:`in_dify_order` for one app kind, with its table bound (one per stream)."""
    table = _TABLE[kind]

    def order(event: Mapping[str, Any]) -> Mapping[str, Any]:
        spec = table.get(event.get("event")) or event_order(event, kind)  # type: ignore[arg-type]
        return event if spec is None else reorder(event, spec)

    return order


_ORDERERS = {kind: orderer(kind) for kind in AppKind}


def in_dify_order(event: Mapping[str, Any], kind: AppKind) -> Mapping[str, Any]:
    """``event`` with its keys in the order Dify's Service API writes them (values untouched).

    Known keys in Dify's order, unknown keys after them as they came; an unknown event as it
    came. Streams use :func:`orderer` (the same, with the kind's table bound).
    """
    return _ORDERERS[kind](event)


# Events whose Dify 1.15 model holds only strings, ints, booleans and nulls: with no key the
# table does not know, their frame cannot hold a float, so dify_frame's float check is skipped
# (these are the per-chunk events of every stream)
_NO_FLOATS = frozenset(
    {
        "message",
        "agent_message",
        "message_file",
        "message_replace",
        "tts_message",
        "tts_message_end",
        "text_chunk",
        "text_replace",
        "reasoning_chunk",
    }
)


def _plain_events(kind: AppKind) -> dict[str, tuple[frozenset[str], frozenset[str] | None]]:
    """The :data:`_NO_FLOATS` events of ``kind``: their keys, and their ``data``'s keys."""
    plain: dict[str, tuple[frozenset[str], frozenset[str] | None]] = {}
    for name, spec in _TABLE[kind].items():
        if name in _NO_FLOATS:
            data = dict(spec.nested).get("data")
            plain[name] = (frozenset(spec.keys), None if data is None else frozenset(data.keys))
    return plain


_PLAIN = {kind: _plain_events(kind) for kind in AppKind}


def framer(kind: AppKind) -> Callable[[Mapping[str, Any]], bytes]:
    """Each event's SSE frame as Dify's Service API writes it, for one app kind (a stream):
    keys in Dify's order (:func:`orderer`), JSON as orjson writes it (:func:`dify_frame`)."""
    order = _ORDERERS[kind]
    plain = _PLAIN[kind]

    def frame(event: Mapping[str, Any]) -> bytes:
        ordered = order(event)
        known = plain.get(event.get("event"))  # type: ignore[arg-type]
        if known is not None and known[0].issuperset(event):
            data = event.get("data")
            if known[1] is None or not isinstance(data, dict) or known[1].issuperset(data):
                return data_frame(ordered)
        return dify_frame(ordered)

    return frame


def metadata_in_dify_order(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """A message's ``metadata`` (blocking bodies) in Dify's order."""
    return reorder(metadata, METADATA)
