"""OpenAI-compatible facade: ``GET /v1/models`` and ``POST /v1/chat/completions`` (SPEC §7).

- ``messages`` may use string content or content-part arrays (text parts are joined; image
  parts are refused with a clear 400 until file support exists);
- system (and ``developer``) messages go to the app's ``system_prompt`` input when the app
  declares one, otherwise they are prepended to the first query of a conversation;
- chat-type apps keep one Dify conversation per chat, found from the resent history
  (:mod:`bridge.storage.transcripts`), the ``X-Conversation-Id`` header, or started anew; the
  response carries ``X-Conversation-Id``;
- workflow and completion apps get the last user message in ``query_variable``; other app
  inputs may be sent in a non-standard ``inputs`` object (``extra_body`` in the SDKs);
- streaming sends ``chat.completion.chunk`` frames — role delta first, one content delta per
  app event, a final ``finish_reason`` chunk, optional usage, ``data: [DONE]`` — with
  ``: keepalive`` comments during silences; a failure mid-stream is a final ``{"error": …}``
  chunk;
- the model's reasoning (Dify 1.15's ``reasoning_chunk`` events, or
  ``message_end.metadata.reasoning``) goes to ``delta.reasoning_content`` /
  ``message.reasoning_content`` — the field DeepSeek-style clients (LiteLLM, LangChain's
  DeepSeek adapter, the AI SDK) read — and never into ``content``;
- a run paused by a Human Input node ends with its partial answer and a note that it waits
  for input (finish reason ``stop``); unknown events are skipped.
"""

from __future__ import annotations

import functools
import itertools
import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from werkzeug import Response

from bridge.app.aggregate import (
    PAUSED_TEXT,
    Aggregator,
    error_from_event,
    outputs_text,
    reasoning_of,
)
from bridge.app.gateway import (
    AppFailure,
    AppKind,
    Reason,
    RunRequest,
    input_variables,
    kind_of_event,
)
from bridge.call import Call
from bridge.errors import (
    BridgeError,
    Family,
    describe_exception,
    error_body,
    internal_error,
    invalid_param,
)
from bridge.storage.overlap import Overlapped
from bridge.storage.transcripts import AnswerDigest, Transcripts, Turn, endpoint_secret
from bridge.transport.body import json_object
from bridge.transport.responses import json_response, stream_response
from bridge.transport.sse import DONE, KEEPALIVE_COMMENT, data_frame, with_keepalive

logger = logging.getLogger(__name__)

KEEPALIVE_INTERVAL = 10.0
SYSTEM_VARIABLE = "system_prompt"
CONVERSATION_HEADER = "X-Conversation-Id"
MODEL_CREATED = 1795305600  # fixed: the model list should not change between calls


# -- /v1/models ------------------------------------------------------------------------


def models(call: Call) -> Response:
    call.authenticate()
    model = {"id": call.settings.model_name, "object": "model", "created": MODEL_CREATED,
             "owned_by": "app-bridge"}  # fmt: skip
    return json_response({"object": "list", "data": [model]})


# -- request parsing ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChatRequest:
    turns: list[Turn]  # system/user/assistant, in order
    inputs: dict[str, Any]  # optional, non-standard: extra app inputs (``extra_body``)
    stream: bool
    include_usage: bool
    user: str

    @property
    def history(self) -> list[Turn]:
        """Everything before the last user message."""
        return self.turns[:-1]

    @property
    def question(self) -> str:
        return self.turns[-1][1]

    @property
    def system(self) -> str:
        return "\n\n".join(text for role, text in self.turns if role == "system")


def _content_text(content: object, index: int) -> str:
    param = f"messages[{index}].content"
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise invalid_param("content must be a string or an array of content parts", param=param)
    texts = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind in ("image_url", "input_audio", "file"):
            raise invalid_param(
                f"Content parts of type '{kind}' are not supported yet: only text is passed on.",
                param=param,
            )
        else:
            raise invalid_param("Unsupported content part.", param=param)
    return "\n".join(texts)


def message_role(role: object, param: str) -> str:
    """``system``, ``user`` or ``assistant`` (``developer`` is ``system``); else a 400."""
    if role == "developer":
        return "system"
    if role not in ("system", "user", "assistant"):
        raise invalid_param(
            f"Unsupported role '{str(role)[:20]}': use system, developer, user or assistant.",
            param=param,
        )
    return str(role)


def parse_chat(body: Mapping[str, Any]) -> ChatRequest:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid_param("messages must be a non-empty array.", param="messages")
    turns: list[Turn] = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise invalid_param("Each message must be an object.", param=f"messages[{index}]")
        role = message_role(message.get("role"), f"messages[{index}].role")
        turns.append((role, _content_text(message.get("content"), index)))
    if turns[-1][0] != "user" or not turns[-1][1].strip():
        raise invalid_param("The last message must be a non-empty user message.", param="messages")
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise invalid_param("user must be a string.", param="user")
    inputs = body.get("inputs") or {}
    if not isinstance(inputs, dict):
        raise invalid_param("inputs must be an object.", param="inputs")
    options = body.get("stream_options") or {}
    return ChatRequest(
        turns=turns,
        inputs=inputs,
        stream=body.get("stream") is True,
        include_usage=isinstance(options, dict) and options.get("include_usage") is True,
        user=user or "",
    )


# -- the run -----------------------------------------------------------------------------


def app_run(
    call: Call,
    *,
    question: str,
    system: str,
    extra_inputs: Mapping[str, Any],
    conversation_id: str,
    user: str,
) -> RunRequest:
    """The app run for an OpenAI-style request (Chat Completions and Responses alike).

    The question also goes to ``query_variable`` (workflow/completion apps); the system
    prompt to the ``system_prompt`` input when the app declares one, else it is prepended
    to the first query of a conversation. Extra inputs pass when the app declares them.
    """
    declared = {
        c["variable"] for c in input_variables(call.gateway.parameters(call.settings.app_id))
    }
    inputs: dict[str, Any] = {k: v for k, v in extra_inputs.items() if k in declared}
    query_variable = call.settings.query_variable or "query"
    if query_variable in declared:
        inputs[query_variable] = question
    query = question
    if system and SYSTEM_VARIABLE in declared:
        inputs[SYSTEM_VARIABLE] = system
    elif system and not conversation_id:
        query = f"{system}\n\n{question}"
    return RunRequest(call.settings.app_id, inputs, query, conversation_id, user)


def chat_completions(call: Call) -> Response:
    call.authenticate()
    call.settings.require("app")
    chat = parse_chat(json_object(call.body, call.mimetype))
    completion = _Completion(call, chat)
    return completion.stream() if chat.stream else completion.blocking()


class _Completion:
    def __init__(self, call: Call, chat: ChatRequest) -> None:
        self.call = call
        self.chat = chat
        self.transcripts = Transcripts(call.records, endpoint_secret(call.settings.api_key))
        self.conversations = call.conversations
        self.model = call.settings.model_name
        self.continued = False  # found from the history: its record is replaced afterwards
        self.owner_write: Overlapped | None = None  # a new conversation's owner record
        self.conversation_id = self._find_conversation()
        self.started = int(time.time())

    def _find_conversation(self) -> str:
        explicit = (self.call.headers.get(CONVERSATION_HEADER) or "").strip()
        if explicit:
            self.conversations.check(explicit, self.chat.user)
            return explicit
        found = self.transcripts.conversation_for(self.chat.history, self.chat.user) or ""
        self.continued = bool(found)
        return found

    def _run_request(self, conversation_id: str) -> RunRequest:
        chat = self.chat
        return app_run(
            self.call,
            question=chat.question,
            system=chat.system,
            extra_inputs=chat.inputs,
            conversation_id=conversation_id,
            user=chat.user,
        )

    def events(self) -> Iterator[dict[str, Any]]:
        """App events; a stale conversation is reset and the run retried once."""
        try:
            yield from self._events(self.conversation_id)
        except AppFailure as failure:
            if failure.reason is not Reason.CONVERSATION_NOT_EXISTS or not self.conversation_id:
                raise
            self.conversations.forget(self.conversation_id)
            self.conversation_id = ""
            yield from self._events("")

    def _events(self, conversation_id: str) -> Iterator[dict[str, Any]]:
        remembered = bool(conversation_id)
        completed = False
        try:
            for event in self.call.gateway.events(self._run_request(conversation_id)):
                if event.get("event") == "error":
                    raise error_from_event(event)
                new = not remembered and bool(event.get("conversation_id"))
                if new:
                    remembered = True
                    self.conversation_id = str(event["conversation_id"])  # the header needs it
                yield event  # before the storage write, so it never delays the first chunk
                if new:  # the owner record is written while the app goes on generating
                    self.owner_write = Overlapped(
                        functools.partial(
                            self.conversations.remember, self.conversation_id, self.chat.user
                        )
                    )
            completed = True
        finally:
            if not completed:  # a run that ended otherwise has no transcript to write beside it
                self._settle_owner()

    def _settle_owner(self) -> None:
        """Wait for the owner record (once): no storage call outlives the request."""
        recording, self.owner_write = self.owner_write, None
        if recording is None:
            return
        try:
            recording.result()
        except Exception as exc:  # noqa: BLE001 - the answer stands; the id then 404s
            logger.warning("could not record conversation owner: %s", describe_exception(exc))

    def _answer_digest(self, kind: AppKind | None) -> AnswerDigest | None:
        """Where a chat app's answer is digested as it goes (only chat apps continue)."""
        if kind is not AppKind.CHAT:
            return None
        return self.transcripts.answer_digest(self.chat.turns, self.chat.user)

    def _finish(self, answer: AnswerDigest | None) -> None:
        """Remember the answered transcript so the next turn continues this conversation.

        A first turn's owner record may still be on its way: the transcript state (another
        bucket) is written beside it, and both are settled before the answer ends."""
        try:
            if answer is not None and self.conversation_id:
                self.transcripts.remember_answer(
                    self.chat.turns,
                    answer,
                    self.chat.user,
                    self.conversation_id,
                    replaces=self.chat.history if self.continued else None,
                )
        except Exception as exc:  # noqa: BLE001 - continuity is best effort; the answer stands
            logger.warning("could not remember transcript: %s", describe_exception(exc))
        finally:
            self._settle_owner()

    def _headers(self) -> dict[str, str]:
        return {CONVERSATION_HEADER: self.conversation_id} if self.conversation_id else {}

    # -- non-streaming ---------------------------------------------------------------------

    def blocking(self) -> Response:
        try:
            return self._blocking()
        finally:
            self._settle_owner()  # already done by _finish, unless the answer failed first

    def _blocking(self) -> Response:
        aggregator = Aggregator()
        for event in self.events():
            aggregator.feed(event)
        result = aggregator.result()
        if aggregator.paused:
            partial = (result.get("answer") or "").strip() if "answer" in result else ""
            answer = f"{partial}\n\n{PAUSED_TEXT}" if partial else PAUSED_TEXT
            usage = (
                chat_usage(result.get("metadata"))
                if "answer" in result
                else workflow_usage(result["data"])
            )
            completion_id = result.get("message_id") or result["workflow_run_id"]
        elif aggregator.kind is AppKind.WORKFLOW:
            data = result["data"]
            if data.get("status") not in ("succeeded", "partial-succeeded"):
                raise BridgeError(
                    500, "workflow_failed", str(data.get("error") or "The workflow failed.")
                )
            answer, usage = outputs_text(data.get("outputs")), workflow_usage(data)
            completion_id = result["workflow_run_id"]
        else:
            answer, usage = result["answer"], chat_usage(result.get("metadata"))
            completion_id = result["message_id"]
        digested = self._answer_digest(aggregator.kind)
        if digested is not None:
            digested.feed(answer)
        self._finish(digested)
        message: dict[str, Any] = {"role": "assistant", "content": answer, "refusal": None}
        if aggregator.reasoning_text:
            message["reasoning_content"] = aggregator.reasoning_text
        body = {
            "id": f"chatcmpl-{completion_id}",
            "object": "chat.completion",
            "created": result.get("created_at") or self.started,
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": "content_filter" if aggregator.replaced else "stop",
                }
            ],
            "usage": usage,
            "system_fingerprint": None,
        }
        return json_response(body, headers=self._headers())

    # -- streaming -------------------------------------------------------------------------

    def stream(self) -> Response:
        chunks = with_keepalive(self._chunks(), KEEPALIVE_INTERVAL, KEEPALIVE_COMMENT)
        first = next(chunks, None)  # failures before the first chunk are HTTP errors
        frames = _guarded_frames(itertools.chain([first] if first else [], chunks))
        response = stream_response(frames, content_type="text/event-stream; charset=utf-8")
        response.headers.update(self._headers())
        return response

    def _chunk(self, chunk_id: str, created: int, delta: dict, finish: str | None = None) -> bytes:
        return data_frame({
            "id": chunk_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        })  # fmt: skip

    def _chunks(self) -> Iterator[bytes]:
        try:
            yield from self._frames_of_events()
        finally:
            self._settle_owner()  # already done by _finish, unless the stream ended first

    def _frames_of_events(self) -> Iterator[bytes]:
        """One frame per app event that carries text; nothing for progress-only events."""
        chunk_id, created = "", self.started
        state = _StreamState()
        for event in self.events():
            if state.kind is None:
                state.kind = kind_of_event(event)
                state.digest = self._answer_digest(state.kind)
                chunk_id = f"chatcmpl-{event.get('message_id') or event.get('workflow_run_id')}"
                created = int(event.get("created_at") or self.started)
                yield self._chunk(chunk_id, created, {"role": "assistant", "content": ""})
            thought, text = state.feed(event)
            if thought:
                yield self._chunk(chunk_id, created, {"reasoning_content": thought})
            if text:
                yield self._chunk(chunk_id, created, {"content": text})
        yield self._chunk(chunk_id, created, {}, state.finish)
        if self.chat.include_usage:
            yield data_frame({
                "id": chunk_id, "object": "chat.completion.chunk", "created": created,
                "model": self.model, "system_fingerprint": None, "choices": [],
                "usage": state.usage
                or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            })  # fmt: skip
        self._finish(state.digest)
        yield DONE


@dataclass
class _StreamState:
    """What a chat-completions stream has seen so far; :meth:`feed` maps one app event."""

    kind: AppKind | None = None
    answered: bool = False  # the text itself is never kept: a stream may be any size
    digest: AnswerDigest | None = None  # where a chat app's answer is digested as it goes
    usage: dict[str, int] | None = None
    finish: str = "stop"
    reasoned: bool = False

    def feed(self, event: Mapping[str, Any]) -> tuple[str, str]:
        """``(reasoning delta, content delta)`` for one event; unknown events give nothing."""
        name = event.get("event")
        raw = event.get("data")
        data: dict[str, Any] = raw if isinstance(raw, dict) else {}
        thought, text = "", ""
        if name == "reasoning_chunk":
            thought = str(data.get("reasoning") or "")
            self.reasoned = self.reasoned or bool(thought)
        elif name in ("message", "agent_message"):
            text = str(event.get("answer") or "")
        elif name == "text_chunk":
            text = str(data.get("text") or "")
        elif name == "message_replace":  # output moderation replaced the answer in Dify:
            self.finish = "content_filter"  # the text already sent cannot be withdrawn; append
            replacement = str(event.get("answer") or "")
            text = f"\n\n{replacement}" if self.answered else replacement
        elif name == "message_end":
            meta = event.get("metadata")
            metadata: dict[str, Any] = meta if isinstance(meta, dict) else {}
            self.usage = chat_usage(metadata)
            if not self.reasoned:  # not streamed: send it now
                thought = reasoning_of(metadata)
        elif name == "workflow_paused":  # a Human Input node stopped the run: say so
            if self.kind is AppKind.WORKFLOW:
                self.usage = workflow_usage(data)
            text = f"\n\n{PAUSED_TEXT}" if self.answered else PAUSED_TEXT
        elif name == "workflow_finished" and self.kind is AppKind.WORKFLOW:
            self.usage = workflow_usage(data)
            if not self.answered:  # a workflow that streamed no text: its outputs are the answer
                text = outputs_text(data.get("outputs"))
        if text:
            self.answered = True
            if self.digest is not None:
                self.digest.feed(text)
        return thought, text


def _guarded_frames(frames: Iterator[bytes]) -> Iterator[bytes]:
    """Frames as produced; a failure becomes a final ``{"error": …}`` chunk."""
    try:
        yield from frames
    except BridgeError as error:
        yield data_frame(_error_chunk(error))
    except Exception as exc:  # noqa: BLE001 - a stream must end with a chunk, not a traceback
        logger.error("stream failed: %s", describe_exception(exc))  # noqa: TRY400
        yield data_frame(_error_chunk(internal_error()))


def _error_chunk(error: BridgeError) -> dict[str, Any]:
    return error_body(error, Family.OPENAI)


def chat_usage(metadata: object) -> dict[str, int]:
    usage = (metadata or {}).get("usage") if isinstance(metadata, dict) else None
    usage = usage if isinstance(usage, dict) else {}
    prompt, completion = (
        int(usage.get("prompt_tokens") or 0),
        int(usage.get("completion_tokens") or 0),
    )
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": int(usage.get("total_tokens") or prompt + completion),
    }


def workflow_usage(data: Mapping[str, Any]) -> dict[str, int]:
    total = int(data.get("total_tokens") or 0)
    return {"prompt_tokens": 0, "completion_tokens": total, "total_tokens": total}
