"""OpenAI Responses API: ``POST /v1/responses`` and ``GET /v1/responses/{id}`` (SPEC §7.1).

- ``input`` is a string or input items: messages (``role`` user, system, developer or
  assistant; string content or ``input_text``/``output_text`` parts) and
  ``item_reference``s to this endpoint's own output messages. ``instructions`` and
  system/developer messages are the system prompt, handled as Chat Completions handles a
  system message (:func:`bridge.protocols.openai_api.app_run`).
- Continuity is server-side: every response id is recorded with its ``user`` and its Dify
  conversation (:mod:`bridge.storage.response_store`, one read to continue, one record write per
  response). ``previous_response_id`` continues that conversation; an unknown id, or one
  of another endpoint or another ``user``, is a 404 and the app does not run. A client
  that resends history instead (the AI SDK, the Agents SDK) continues too: its last
  assistant message carries the id of one of our output messages (``msg_`` + the response
  id's random part), or an ``item_reference`` to it.
- Workflow and completion apps get the question in ``query_variable`` (and extra app
  inputs from a non-standard ``inputs`` object, like Chat Completions).
- Streaming sends the Responses SSE sequence (``event: <type>`` + ``data: <json>`` with
  ``sequence_number``): created, in_progress, output_item.added, content_part.added, one
  ``response.output_text.delta`` per app text event, then the ``.done`` events and
  ``response.completed`` (``response.incomplete`` when output moderation replaced the
  answer). Keep-alives are SSE comments; a failure after the stream began is
  ``response.failed``, then the stream ends. Dify's ``reasoning_chunk`` events never reach
  the answer text.
- Parameters the bridge cannot honour (tools, reasoning, background mode…) are a 400
  naming the parameter.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from werkzeug import Response

from bridge.app.aggregate import error_from_event, outputs_text
from bridge.app.gateway import AppFailure, AppKind, Reason, kind_of_event
from bridge.call import Call
from bridge.errors import (
    BridgeError,
    describe_exception,
    internal_error,
    invalid_param,
    not_found,
)
from bridge.protocols.openai_api import app_run, chat_usage, message_role, workflow_usage
from bridge.storage.response_store import (
    ID_PREFIX,
    ResponseStore,
    StoredResponse,
    is_response_id,
    new_id,
)
from bridge.transport.body import json_object
from bridge.transport.responses import json_response, stream_response
from bridge.transport.sse import KEEPALIVE_COMMENT, named_frame, with_keepalive

logger = logging.getLogger(__name__)

KEEPALIVE_INTERVAL = 10.0
MESSAGE_PREFIX = "msg_"
ROUTE_PREFIX = "/v1/responses/"
TEXT_PARTS = ("input_text", "output_text", "text")
FILE_PARTS = ("input_image", "input_file", "input_audio")


# -- request parsing ---------------------------------------------------------------------


def _refuse(name: str, why: str) -> BridgeError:
    return invalid_param(f"'{name}' is not supported by App Bridge: {why}", param=name)


def _is_set(value: object) -> bool:
    if isinstance(value, dict):
        return any(_is_set(v) for v in value.values())
    return value not in (None, False, "", [], 0)


# Parameters that would change what the caller gets if silently ignored.
UNSUPPORTED: dict[str, tuple[Callable[[object], bool], str]] = {
    "tools": (_is_set, "the Dify app runs its own tools; none can be passed in."),
    "tool_choice": (
        lambda v: v not in (None, "auto", "none"),
        "there are no caller-defined tools to choose.",
    ),
    "reasoning": (_is_set, "reasoning settings belong to the Dify app's model."),
    "background": (_is_set, "background mode is not available; use stream instead."),
    "conversation": (_is_set, "use previous_response_id to continue a conversation."),
    "prompt": (_is_set, "prompt templates are not available; use instructions and input."),
    "include": (_is_set, "no extra output data can be included."),
    "top_logprobs": (_is_set, "log probabilities are not available."),
    "max_tool_calls": (_is_set, "there are no caller-defined tools."),
}


@dataclass(frozen=True, slots=True)
class Message:
    role: str  # user | system | assistant | reference
    text: str
    item_id: str = ""


@dataclass(frozen=True, slots=True)
class ResponsesRequest:
    messages: list[Message]
    instructions: str
    previous_response_id: str
    stream: bool
    store: bool
    user: str
    metadata: dict[str, str]
    inputs: dict[str, Any]
    temperature: float | None
    top_p: float | None

    @property
    def system(self) -> str:
        texts = [self.instructions] if self.instructions else []
        texts += [m.text for m in self.messages if m.role == "system"]
        return "\n\n".join(t for t in texts if t.strip())


def _part_text(part: object, param: str) -> str:
    if not isinstance(part, dict):
        raise invalid_param("Each content part must be an object.", param=param)
    kind = part.get("type")
    if kind in TEXT_PARTS and isinstance(part.get("text"), str):
        return str(part["text"])
    if kind == "refusal" and isinstance(part.get("refusal"), str):
        return str(part["refusal"])
    if kind in FILE_PARTS:
        raise invalid_param(
            f"Content parts of type '{kind}' are not supported yet: only text is passed on.",
            param=param,
        )
    raise invalid_param("Unsupported content part: use input_text.", param=param)


def _message(item: Mapping[str, Any], param: str) -> Message:
    role = message_role(item.get("role"), f"{param}.role")
    content = item.get("content")
    if isinstance(content, str):
        text = content
    elif isinstance(content, list):
        text = "\n".join(_part_text(p, f"{param}.content[{j}]") for j, p in enumerate(content))
    else:
        raise invalid_param(
            "content must be a string or an array of parts.", param=f"{param}.content"
        )
    item_id = item.get("id")
    return Message(role, text, item_id if isinstance(item_id, str) else "")


def parse_input(raw: object) -> list[Message]:
    if isinstance(raw, str):
        return [Message("user", raw)]
    if not isinstance(raw, list) or not raw:
        raise invalid_param("input must be a string or a non-empty array of items.", param="input")
    messages = []
    for index, item in enumerate(raw):
        param = f"input[{index}]"
        if not isinstance(item, dict):
            raise invalid_param("Each input item must be an object.", param=param)
        kind = item.get("type", "message")
        if kind == "message":
            messages.append(_message(item, param))
        elif kind == "item_reference" and isinstance(item.get("id"), str):
            messages.append(Message("reference", "", item["id"]))
        else:
            raise invalid_param(
                f"Input items of type '{str(kind)[:40]}' are not supported: only messages "
                "(and references to this endpoint's own messages) are passed to the app.",
                param=param,
            )
    return messages


def _text_field(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise invalid_param(f"{name} must be a string.", param=name)
    return value


def _number(body: Mapping[str, Any], name: str) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid_param(f"{name} must be a number.", param=name)
    return float(value)


def _metadata(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if (
        not isinstance(value, dict)
        or len(value) > 16
        or not all(
            isinstance(k, str) and len(k) <= 64 and isinstance(v, str) and len(v) <= 512
            for k, v in value.items()
        )
    ):
        raise invalid_param(
            "metadata must be an object of at most 16 string values (keys ≤ 64, values ≤ 512 "
            "characters).",
            param="metadata",
        )
    return dict(value)


def parse_responses(body: Mapping[str, Any]) -> ResponsesRequest:
    for name, (refused, why) in UNSUPPORTED.items():
        if refused(body.get(name)):
            raise _refuse(name, why)
    text = body.get("text")
    if isinstance(text, dict) and _is_set(text.get("format")):
        kind = text["format"].get("type") if isinstance(text["format"], dict) else None
        if kind != "text":
            raise _refuse("text.format", "structured output formats are up to the Dify app.")
    messages = parse_input(body.get("input"))
    if messages[-1].role != "user" or not messages[-1].text.strip():
        raise invalid_param("The input must end with a non-empty user message.", param="input")
    inputs = body.get("inputs") or {}
    if not isinstance(inputs, dict):
        raise invalid_param("inputs must be an object.", param="inputs")
    return ResponsesRequest(
        messages=messages,
        instructions=_text_field(body, "instructions"),
        previous_response_id=_text_field(body, "previous_response_id"),
        stream=body.get("stream") is True,
        store=body.get("store") is not False,
        user=_text_field(body, "user"),
        metadata=_metadata(body.get("metadata")),
        inputs=inputs,
        temperature=_number(body, "temperature"),
        top_p=_number(body, "top_p"),
    )


def message_id(response_id: str) -> str:
    return MESSAGE_PREFIX + response_id[len(ID_PREFIX) :]


def response_id_of_message(item_id: str) -> str | None:
    if not item_id.startswith(MESSAGE_PREFIX):
        return None
    candidate = ID_PREFIX + item_id[len(MESSAGE_PREFIX) :]
    return candidate if is_response_id(candidate) else None


# -- the response object -----------------------------------------------------------------


@dataclass(slots=True)
class Shape:
    """What a response object says besides its output (all but ``completed_at`` known up front)."""

    id: str
    created_at: int
    model: str
    instructions: str = ""
    previous_response_id: str = ""
    store: bool = True
    user: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    temperature: float | None = None
    top_p: float | None = None
    completed_at: int | None = None

    def kept(self, status: str, text: str, usage: dict[str, Any] | None, reason: str) -> dict:
        """The compact form kept for ``GET`` (rebuilt by :func:`from_kept`); never the user."""
        counts = (
            [usage["input_tokens"], usage["output_tokens"], usage["total_tokens"]]
            if usage
            else None
        )
        return {"t": self.created_at, "d": self.completed_at, "m": self.model,
                "i": self.instructions, "p": self.previous_response_id, "md": self.metadata,
                "tp": self.temperature, "pp": self.top_p, "s": status, "x": text,
                "k": counts, "r": reason}  # fmt: skip


def from_kept(response_id: str, kept: Mapping[str, Any], user: str) -> dict[str, Any]:
    """The response object again, from :meth:`Shape.kept` (``user`` as the caller named it)."""
    shape = Shape(
        response_id, int(kept.get("t") or 0), str(kept.get("m") or ""),
        str(kept.get("i") or ""), str(kept.get("p") or ""), True, user,
        dict(kept.get("md") or {}), kept.get("tp"), kept.get("pp"), kept.get("d"),
    )  # fmt: skip
    counts = kept.get("k")
    usage = None
    if isinstance(counts, list) and len(counts) == 3:
        usage = responses_usage(
            dict(zip(("prompt_tokens", "completion_tokens", "total_tokens"), counts, strict=True))
        )
    return response_object(
        shape,
        str(kept.get("s") or "completed"),
        str(kept.get("x") or ""),
        usage,
        incomplete=str(kept.get("r") or ""),
    )


def output_message(shape: Shape, text: str | None, status: str) -> dict[str, Any]:
    content = [] if text is None else [_text_part(text)]
    return {"id": message_id(shape.id), "type": "message", "status": status,
            "content": content, "role": "assistant"}  # fmt: skip


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def response_object(
    shape: Shape,
    status: str,
    text: str | None,
    usage: dict[str, int] | None,
    *,
    error: dict[str, str] | None = None,
    incomplete: str = "",
) -> dict[str, Any]:
    """A ``response`` object as OpenAI returns it (``text`` None: no output yet)."""
    output = [] if text is None else [output_message(shape, text, "completed")]
    done = status in ("completed", "incomplete") and text is not None
    return {
        "id": shape.id,
        "object": "response",
        "created_at": shape.created_at,
        "status": status,
        "background": False,
        "completed_at": shape.completed_at if done else None,
        "error": error,
        "incomplete_details": {"reason": incomplete} if incomplete else None,
        "instructions": shape.instructions or None,
        "max_output_tokens": None,
        "max_tool_calls": None,
        "model": shape.model,
        "output": output,
        "output_text": text or "",
        "parallel_tool_calls": True,
        "previous_response_id": shape.previous_response_id or None,
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": shape.store,
        "temperature": 1.0 if shape.temperature is None else shape.temperature,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [],
        "top_logprobs": 0,
        "top_p": 1.0 if shape.top_p is None else shape.top_p,
        "truncation": "disabled",
        "usage": usage,
        "user": shape.user or None,
        "metadata": shape.metadata,
    }


def responses_usage(counts: Mapping[str, int]) -> dict[str, Any]:
    """Chat-style token counts in the Responses shape."""
    return {
        "input_tokens": counts["prompt_tokens"],
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": counts["completion_tokens"],
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": counts["total_tokens"],
    }


def _error_object(error: BridgeError) -> dict[str, str]:
    """``response.error``: OpenAI's codes (the schema has a fixed set), our message."""
    if error.status == 429:
        code = "rate_limit_exceeded"
    elif 400 <= error.status < 500:
        code = "invalid_prompt"
    else:
        code = "server_error"
    return {"code": code, "message": error.message}


# -- app events → text -------------------------------------------------------------------


class Translation:
    """Feed Dify events one by one; each returns the answer text it adds (maybe "").

    Dify's output moderation may replace the answer (``message_replace``) after it was
    streamed: a stream cannot withdraw text, so the replacement is appended there, while a
    blocking answer is the replacement alone — as Dify's own two modes do.
    """

    def __init__(self) -> None:
        self.kind: AppKind | None = None
        self.parts: list[str] = []
        self.usage: dict[str, int] | None = None
        self.replacement: str | None = None

    @property
    def streamed_text(self) -> str:
        return "".join(self.parts)

    @property
    def answer(self) -> str:
        return self.streamed_text if self.replacement is None else self.replacement

    @property
    def incomplete_reason(self) -> str:
        return "" if self.replacement is None else "content_filter"

    def feed(self, event: Mapping[str, Any]) -> str:
        name = event.get("event")
        if name == "error":
            raise error_from_event(event)
        if self.kind is None:
            self.kind = kind_of_event(event)
        text = ""
        if name in ("message", "agent_message"):
            text = str(event.get("answer") or "")
        elif name == "text_chunk":
            text = str((event.get("data") or {}).get("text") or "")
        elif name == "message_replace":
            self.replacement = str(event.get("answer") or "")
            text = f"\n\n{self.replacement}" if self.parts else self.replacement
        elif name == "message_end":
            self.usage = chat_usage(event.get("metadata"))
        elif name == "workflow_finished" and self.kind is AppKind.WORKFLOW:
            data = event.get("data") or {}
            if data.get("status") not in ("succeeded", "partial-succeeded"):
                raise BridgeError(
                    500, "workflow_failed", str(data.get("error") or "The workflow failed.")
                )
            self.usage = workflow_usage(data)
            if not self.parts:  # a workflow that streamed no text: its outputs are the answer
                text = outputs_text(data.get("outputs"))
        # reasoning_chunk (Dify 1.15+), agent_thought, node and workflow progress: no text
        if text:
            self.parts.append(text)
        return text


# -- the routes --------------------------------------------------------------------------


def create(call: Call) -> Response:
    call.authenticate()
    call.settings.require("app")
    request = parse_responses(json_object(call.body, call.mimetype))
    run = _Run(call, request)
    return run.stream() if request.stream else run.blocking()


def retrieve(call: Call) -> Response:
    call.authenticate()
    response_id = call.path[len(ROUTE_PREFIX) :] if call.path.startswith(ROUTE_PREFIX) else ""
    if call.args.get("stream") in ("true", "1"):
        raise _refuse("stream", "only background responses can be streamed again.")
    user = call.args.get("user")
    stored = ResponseStore(call.records).find(response_id, user)
    if stored is None:
        raise _unknown(response_id, "response_id")
    if stored.body is None:
        if not stored.latest:
            why = "a later response of its conversation replaced it"
        elif stored.too_large:
            why = "it was larger than App Bridge keeps"
        else:
            why = "store was false"
        raise not_found(f"Response '{response_id[:64]}' is not stored: {why}.")
    return json_response(from_kept(response_id, stored.body, user or ""))


def _unknown(response_id: str, param: str) -> BridgeError:
    error = not_found(f"Response with id '{response_id[:64]}' not found.")
    error.param = param
    return error


class _Run:
    def __init__(self, call: Call, request: ResponsesRequest) -> None:
        self.call = call
        self.request = request
        self.store = ResponseStore(call.records)
        self.previous, new_messages = self._continuation()
        self.conversation_id = self.previous.conversation_id if self.previous else ""
        self.question = _question(new_messages)
        self.translation = Translation()
        self.shape = Shape(
            id=new_id(self.previous.response_id if self.previous else None),
            created_at=int(time.time()),
            model=call.settings.model_name,
            instructions=request.instructions,
            previous_response_id=request.previous_response_id,
            store=request.store,
            user=request.user,
            metadata=request.metadata,
            temperature=request.temperature,
            top_p=request.top_p,
        )

    def _continuation(self) -> tuple[StoredResponse | None, list[Message]]:
        """The response this one follows in a conversation, and the messages it adds.

        One storage read for ``previous_response_id`` or for resent history whose latest
        assistant turn is ours; references further back (workflow apps keep no
        conversation) are resolved to the text they point to, one read each.
        """
        request, messages = self.request, self.request.messages
        if request.previous_response_id:
            previous = self.store.find(request.previous_response_id, request.user)
            if previous is None:
                raise _unknown(request.previous_response_id, "previous_response_id")
            if not previous.conversation_id:
                raise invalid_param(
                    "The app of this endpoint keeps no conversation (workflow or completion "
                    "app): send the whole context in input instead.",
                    param="previous_response_id",
                )
            return previous, messages
        resolved = list(messages)
        latest = True  # only the latest assistant turn can name the conversation
        for index in range(len(messages) - 1, -1, -1):
            message = messages[index]
            if message.role not in ("assistant", "reference"):
                continue
            if not latest and message.role == "assistant":
                continue
            known = self._known(message)
            if latest and known is not None and known.conversation_id:
                return known, messages[index + 1 :]
            latest = False
            if message.role == "reference":  # no conversation to continue: its text, if kept
                text = known.body.get("x") if known is not None and known.body else None
                if not isinstance(text, str):
                    error = not_found(f"Item with id '{message.item_id[:64]}' not found.")
                    error.param = f"input[{index}]"
                    raise error
                resolved[index] = Message("assistant", text, message.item_id)
        return None, resolved  # a new conversation; earlier turns go to the app as a transcript

    def _known(self, message: Message) -> StoredResponse | None:
        response_id = response_id_of_message(message.item_id)
        return self.store.find(response_id, self.request.user) if response_id else None

    # -- app events ------------------------------------------------------------------------

    def events(self) -> Iterator[dict[str, Any]]:
        request = self.request
        run = app_run(
            self.call,
            question=self.question,
            system=request.system,
            extra_inputs=request.inputs,
            conversation_id=self.conversation_id,
            user=request.user,
        )
        try:
            for event in self.call.gateway.events(run):
                if not self.conversation_id and event.get("conversation_id"):
                    self.conversation_id = str(event["conversation_id"])
                yield event
        except AppFailure as failure:
            if failure.reason is Reason.CONVERSATION_NOT_EXISTS and run.conversation_id:
                raise BridgeError(
                    404,
                    "not_found",
                    "The Dify conversation of this response no longer exists.",
                    param="previous_response_id" if request.previous_response_id else "input",
                ) from None
            raise

    def _save(self, status: str, text: str, usage: dict[str, Any] | None) -> None:
        """Record the response (continuity always; the object too unless store is false)."""
        if not self.conversation_id and not self.request.store:
            return  # nothing to continue and nothing to show
        reason = self.translation.incomplete_reason
        kept = self.shape.kept(status, text, usage, reason) if self.request.store else None
        try:
            self.store.save(
                self.shape.id, self.request.user, self.conversation_id, kept,
                previous=self.previous if self.conversation_id else None,
            )  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - the answer stands without the record
            logger.warning("could not record response: %s", describe_exception(exc))

    def _final(self, text: str) -> tuple[str, str, dict[str, Any] | None]:
        """Status, text and usage of the finished run (and its completion time)."""
        self.shape.completed_at = int(time.time())
        usage = self.translation.usage
        status = "incomplete" if self.translation.incomplete_reason else "completed"
        return status, text, responses_usage(usage) if usage else None

    # -- non-streaming ---------------------------------------------------------------------

    def blocking(self) -> Response:
        translation = self.translation
        for event in self.events():
            translation.feed(event)
        status, text, usage = self._final(translation.answer)
        self._save(status, text, usage)
        reason = translation.incomplete_reason
        return json_response(response_object(self.shape, status, text, usage, incomplete=reason))

    # -- streaming -------------------------------------------------------------------------

    def stream(self) -> Response:
        writer = EventWriter()
        frames = with_keepalive(self._frames(writer), KEEPALIVE_INTERVAL, KEEPALIVE_COMMENT)
        first = next(frames, None)  # failures before the first frame are HTTP errors
        chained = itertools.chain([first] if first else [], frames)
        return stream_response(
            self._guarded(chained, writer), content_type="text/event-stream; charset=utf-8"
        )

    def _opening(self, writer: EventWriter) -> bytes:
        shape, item_id = self.shape, message_id(self.shape.id)
        started = response_object(shape, "in_progress", None, None)
        return b"".join((
            writer.frame("response.created", response=started),
            writer.frame("response.in_progress", response=started),
            writer.frame("response.output_item.added", output_index=0,
                         item=output_message(shape, None, "in_progress")),
            writer.frame("response.content_part.added", item_id=item_id, output_index=0,
                         content_index=0, part=_text_part("")),
        ))  # fmt: skip

    def _frames(self, writer: EventWriter) -> Iterator[bytes]:
        """One delta frame per app event that carries text; nothing for progress events."""
        item_id = message_id(self.shape.id)
        for event in self.events():
            text = self.translation.feed(event)
            if not writer.opened:
                writer.opened = True
                yield self._opening(writer)
            if text:
                yield writer.frame("response.output_text.delta", item_id=item_id,
                                   output_index=0, content_index=0, delta=text,
                                   logprobs=[])  # fmt: skip
        if not writer.opened:
            writer.opened = True
            yield self._opening(writer)
        status, text, usage = self._final(self.translation.streamed_text)
        # each closing event carries the whole text: one chunk each, so only one is in memory
        yield writer.frame("response.output_text.done", item_id=item_id, output_index=0,
                           content_index=0, text=text, logprobs=[])  # fmt: skip
        yield writer.frame("response.content_part.done", item_id=item_id, output_index=0,
                           content_index=0, part=_text_part(text))  # fmt: skip
        yield writer.frame("response.output_item.done", output_index=0,
                           item=output_message(self.shape, text, "completed"))  # fmt: skip
        self._save(status, text, usage)  # before the terminal event: the id works from then on
        reason = self.translation.incomplete_reason
        final = response_object(self.shape, status, text, usage, incomplete=reason)
        yield writer.frame(f"response.{status}", response=final)

    def _guarded(self, frames: Iterator[bytes], writer: EventWriter) -> Iterator[bytes]:
        """Frames as produced; a failure becomes ``response.failed`` and the stream ends."""
        try:
            yield from frames
        except Exception as exc:  # noqa: BLE001 - a stream must end with an event, not a traceback
            if isinstance(exc, BridgeError):
                error = exc
            else:
                logger.error("stream failed: %s", describe_exception(exc))  # noqa: TRY400
                error = internal_error()
            opening = b"" if writer.opened else self._opening(writer)
            failed = response_object(self.shape, "failed", None, None, error=_error_object(error))
            yield opening + writer.frame("response.failed", response=failed)


class EventWriter:
    """Numbers the events of one stream (``sequence_number`` from 0)."""

    def __init__(self) -> None:
        self.sequence = itertools.count()
        self.opened = False

    def frame(self, kind: str, **fields: Any) -> bytes:
        return named_frame(kind, {"type": kind, "sequence_number": next(self.sequence), **fields})


def _question(messages: list[Message]) -> str:
    """The query for the app: the new user text, or a labelled transcript of new turns."""
    turns = [m for m in messages if m.role in ("user", "assistant") and m.text.strip()]
    if all(m.role == "user" for m in turns):
        return "\n\n".join(m.text for m in turns)
    return "\n\n".join(f"{m.role.capitalize()}: {m.text}" for m in turns)
