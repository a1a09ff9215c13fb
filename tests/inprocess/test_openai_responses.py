"""OpenAI Responses API through the SDK's executor, driven by the real ``openai`` client.

Shapes are checked against the ``openai`` package's own pydantic models (``Response`` and
the ``ResponseStreamEvent`` union), on the raw JSON the bridge sent.
"""

import json

import openai
import pytest
from conftest import CHAT_APP, SETTINGS
from inprocess_http import openai_client
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from bridge.protocols import openai_responses
from devkit.workspace import App, Script, Workspace, inner_api_error

AUTH = {"Authorization": "Bearer test-key", "Content-Type": "application/json"}
EVENTS = TypeAdapter(ResponseStreamEvent)
OPENING = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
]
CLOSING = [
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]


def settings_for(app_id=CHAT_APP, **extra):
    return {**SETTINGS, "app": {"app_id": app_id}, **extra}


@pytest.fixture
def client(inprocess):
    return openai_client(inprocess, settings_for())


def post(inprocess, body, *, settings=None, headers=AUTH, endpoint_id="endpoint-inprocess"):
    return inprocess.request(
        "POST",
        "/v1/responses",
        settings=settings or settings_for(),
        headers=headers,
        body=json.dumps(body).encode(),
        endpoint_id=endpoint_id,
    )


def sse_events(response):
    """(event name, validated event, raw dict) per frame; comments skipped, framing checked."""
    out = []
    for frame in response.text.split("\n\n"):
        if not frame or frame.startswith(":"):
            continue
        name_line, data_line = frame.split("\n")
        assert name_line.startswith("event: ") and data_line.startswith("data: ")
        raw = json.loads(data_line[6:])
        assert raw["type"] == name_line[7:]
        out.append((raw["type"], EVENTS.validate_python(raw), raw))
    return out


def app_text_events(workspace):
    return [e for e in workspace.emitted[-1] if e["event"] in ("message", "agent_message")]


# -- blocking ------------------------------------------------------------------------------


def test_blocking_response_object(client, inprocess, workspace):
    r = client.responses.create(model="m", input="hi", instructions="Be terse.")
    assert r.id.startswith("resp_") and r.object == "response" and r.status == "completed"
    assert r.output_text == "Hello from Chat. You said: Be terse.\n\nhi"
    assert r.model == "app-bridge" and r.instructions == "Be terse."
    message = r.output[0]
    assert message.type == "message" and message.role == "assistant"
    assert message.id == "msg_" + r.id[5:] and message.content[0].type == "output_text"
    assert (r.usage.input_tokens, r.usage.output_tokens, r.usage.total_tokens) == (12, 8, 20)
    assert workspace.invocations[0].query == "Be terse.\n\nhi"
    raw = post(inprocess, {"input": "hi"})
    assert raw.status == 200 and raw.header("Content-Type") == "application/json"
    body = raw.json()
    Response.model_validate(body)
    assert body["output_text"] == "Hello from Chat. You said: hi"


def test_instructions_go_to_a_declared_system_prompt(inprocess, workspace):
    form = [{"paragraph": {"variable": "system_prompt", "label": "S"}}]
    workspace.add_app(App("app-sys", "chat", user_input_form=form))
    client = openai_client(inprocess, settings_for("app-sys"))
    client.responses.create(
        model="m",
        instructions="Be terse.",
        input=[
            {"role": "developer", "content": "Answer in French."},
            {"role": "user", "content": [{"type": "input_text", "text": "hi"}]},
        ],
    )
    inv = workspace.invocations[-1]
    assert (inv.query, inv.inputs) == ("hi", {"system_prompt": "Be terse.\n\nAnswer in French."})


# -- streaming -----------------------------------------------------------------------------


def test_stream_event_sequence_and_shapes(inprocess, workspace):
    r = post(inprocess, {"input": "a b c", "stream": True})
    assert r.status == 200 and r.header("Content-Type") == "text/event-stream; charset=utf-8"
    events = sse_events(r)
    names = [name for name, _, _ in events]
    deltas = [e for name, e, _ in events if name == "response.output_text.delta"]
    assert names == OPENING + ["response.output_text.delta"] * len(deltas) + CLOSING
    assert [raw["sequence_number"] for _, _, raw in events] == list(range(len(events)))
    # one delta per app text event, never coalesced
    assert [d.delta for d in deltas] == [e["answer"] for e in app_text_events(workspace)]
    created, completed = events[0][1], events[-1][1]
    assert created.response.status == "in_progress" and created.response.output == []
    assert completed.response.id == created.response.id
    assert completed.response.output_text == "Hello from Chat. You said: a b c"
    assert completed.response.usage.total_tokens == 20
    item_ids = {raw.get("item_id") or raw.get("item", {}).get("id") for _, _, raw in events[2:-1]}
    assert item_ids == {"msg_" + created.response.id[5:]}
    assert b"event: ping" not in r.body


def test_create_stream_true_with_the_client(client):
    stream = client.responses.create(model="m", input="one two", stream=True)
    events = list(stream)
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == events[-1].response.output_text == "Hello from Chat. You said: one two"


def test_responses_stream_helper(client):
    with client.responses.stream(model="m", input="helper") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text == "Hello from Chat. You said: helper"
    assert final.status == "completed"


def test_agent_and_chatflow_apps_stream_text(inprocess, workspace):
    for app_id, answer in (("app-agent-0001", "Hello from Agent"), ("app-flow-0001", "Hello from Chatflow")):  # fmt: skip
        events = sse_events(
            post(inprocess, {"input": "x", "stream": True}, settings=settings_for(app_id))
        )
        deltas = [e.delta for n, e, _ in events if n == "response.output_text.delta"]  # fmt: skip
        assert list(deltas) == [e["answer"] for e in app_text_events(workspace)]
        assert events[-1][1].response.output_text.startswith(answer)


def test_keepalive_comments_during_silences(inprocess, workspace, monkeypatch):
    monkeypatch.setattr(openai_responses, "KEEPALIVE_INTERVAL", 0.05)
    workspace.app(CHAT_APP).script = Script(answer="slow answer", delay=0.3)
    r = post(inprocess, {"input": "x", "stream": True})
    frames = [f for f in r.text.split("\n\n") if f]
    first_delta = next(i for i, f in enumerate(frames) if "output_text.delta" in f)
    assert ": keepalive" in frames[first_delta:]
    assert sse_events(r)[-1][0] == "response.completed"


def test_reasoning_chunks_never_reach_the_answer(inprocess, workspace):
    """Dify 1.15+ ``reasoning_chunk`` events (daemon-notes §D) are not answer text."""

    class Reasoning(Workspace):
        def run_app(self, request, *, user_id=""):
            for event in super().run_app(request, user_id=user_id):
                if event["event"] == "message":
                    yield {"event": "reasoning_chunk", "conversation_id": event["conversation_id"],
                           "message_id": event["message_id"], "created_at": event["created_at"],
                           "task_id": event["task_id"],
                           "data": {"message_id": event["message_id"], "reasoning": "SECRET",
                                    "node_id": "llm", "is_final": False}}  # fmt: skip
                yield event

    reasoning = Reasoning([App(CHAT_APP, "chat", "Chat")])
    inprocess.workspace = reasoning
    r = post(inprocess, {"input": "think", "stream": True})
    assert "SECRET" not in r.text
    assert sse_events(r)[-1][1].response.output_text == "Hello from Chat. You said: think"
    assert "SECRET" not in post(inprocess, {"input": "think"}).text


# -- continuity ----------------------------------------------------------------------------


def test_previous_response_id_continues_the_dify_conversation(client, workspace):
    first = client.responses.create(model="m", input="turn one", instructions="s", user="alice")
    second = client.responses.create(
        model="m", input="turn two", previous_response_id=first.id, user="alice", stream=True
    )
    events = list(second)
    third = client.responses.create(
        model="m", input="turn three", previous_response_id=events[-1].response.id, user="alice"
    )
    one, two, three = workspace.invocations
    assert one.conversation_id == "" and one.query == "s\n\nturn one"
    assert (two.query, three.query) == ("turn two", "turn three")
    conversation = workspace.emitted[0][0]["conversation_id"]
    assert two.conversation_id == three.conversation_id == conversation
    assert third.previous_response_id == events[-1].response.id


def test_another_user_or_endpoint_cannot_continue(inprocess, client, workspace):
    first = client.responses.create(model="m", input="mine", user="alice")
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model="m", input="steal", previous_response_id=first.id, user="bob")
    assert caught.value.body["param"] == "previous_response_id"
    other = openai_client(inprocess, settings_for(), endpoint_id="endpoint-other")
    with pytest.raises(openai.NotFoundError):
        other.responses.create(model="m", input="x", previous_response_id=first.id, user="alice")
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="m", input="x", previous_response_id="resp_" + "0" * 48)
    assert len(workspace.invocations) == 1


def test_resent_history_continues_through_our_message_ids(client, workspace):
    """The AI SDK and the Agents SDK resend history; our output item ids identify it."""
    first = client.responses.create(model="m", input="one", user="u")
    item = first.output[0].model_dump(exclude_none=True)
    client.responses.create(
        model="m", user="u", input=[{"role": "user", "content": "one"}, item,
                                    {"role": "user", "content": "two"}],
    )  # fmt: skip
    client.responses.create(
        model="m", user="u", input=[{"role": "user", "content": "one"},
                                    {"type": "item_reference", "id": first.output[0].id},
                                    {"role": "user", "content": "three"}],
    )  # fmt: skip
    conversation = workspace.emitted[0][0]["conversation_id"]
    assert [(i.query, i.conversation_id) for i in workspace.invocations[1:]] == [
        ("two", conversation),
        ("three", conversation),
    ]


def test_references_without_a_conversation_resolve_to_their_text(inprocess, workspace):
    """A workflow app keeps no conversation: the AI SDK's item_reference becomes the text."""
    form = [{"paragraph": {"variable": "query", "label": "Q"}}]
    workspace.add_app(App("app-wf", "workflow", user_input_form=form,
                          script=Script(answer="A:{inputs[query]}")))  # fmt: skip
    client = openai_client(inprocess, settings_for("app-wf"))
    first = client.responses.create(model="m", input="one")
    client.responses.create(
        model="m", input=[{"role": "user", "content": "one"},
                          {"type": "item_reference", "id": first.output[0].id},
                          {"role": "user", "content": "two"}],
    )  # fmt: skip
    inv = workspace.invocations[-1]
    assert inv.inputs["query"] == "User: one\n\nAssistant: A:one\n\nUser: two"
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(
            model="m", input=[{"type": "item_reference", "id": "msg_" + "1" * 48},
                              {"role": "user", "content": "three"}],
        )  # fmt: skip
    assert caught.value.body["param"] == "input[0]"
    assert len(workspace.invocations) == 2


def test_foreign_history_starts_a_new_conversation_with_the_transcript(client, workspace):
    client.responses.create(
        model="m",
        input=[
            {"role": "user", "content": "one"},
            {"role": "assistant", "content": "reply", "id": "msg_elsewhere"},
            {"role": "user", "content": "two"},
        ],
    )
    inv = workspace.invocations[-1]
    assert inv.conversation_id == ""
    assert inv.query == "User: one\n\nAssistant: reply\n\nUser: two"


def test_stale_conversation_is_a_404(client, workspace):
    first = client.responses.create(model="m", input="one")
    workspace.forget_conversation(workspace.emitted[0][0]["conversation_id"])
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model="m", input="two", previous_response_id=first.id)
    assert "no longer exists" in caught.value.message


# -- retrieve ------------------------------------------------------------------------------


def test_retrieve_returns_the_stored_response(client, inprocess):
    created = client.responses.create(model="m", input="keep me", metadata={"k": "v"}, user="u")
    got = client.responses.retrieve(created.id)
    assert (got.id, got.output_text, got.status, got.metadata) == (
        created.id,
        created.output_text,
        "completed",
        {"k": "v"},
    )
    assert got.usage.total_tokens == 20 and got.output[0].id == created.output[0].id
    raw = inprocess.request(
        "GET", f"/v1/responses/{created.id}", settings=settings_for(), headers=AUTH
    )
    Response.model_validate(raw.json())
    with pytest.raises(openai.NotFoundError):  # another user, when the caller names one
        client.responses.retrieve(created.id, extra_query={"user": "other"})


def test_user_ids_never_reach_storage(client, workspace):
    r = client.responses.create(model="m", input="hi", user="alice@example.com")
    stored = b"".join(workspace.storage.data.values())
    assert b"alice" not in stored and r.id[5:].encode() not in stored
    assert client.responses.retrieve(r.id).user is None
    named = client.responses.retrieve(r.id, extra_query={"user": "alice@example.com"})
    assert named.user == "alice@example.com" and named.completed_at == r.completed_at


def test_a_conversation_keeps_its_latest_response(client, workspace):
    """Dify conversations are linear: one record per conversation, the latest object kept."""
    first = client.responses.create(model="m", input="one")
    second = client.responses.create(model="m", input="two", previous_response_id=first.id)
    assert client.responses.retrieve(second.id).output_text == second.output_text
    with pytest.raises(openai.NotFoundError, match="later response"):
        client.responses.retrieve(first.id)
    client.responses.create(model="m", input="two again", previous_response_id=first.id)
    conversation = workspace.emitted[0][0]["conversation_id"]
    assert [i.conversation_id for i in workspace.invocations[1:]] == [conversation] * 2
    assert len(workspace.storage.data) == 1


def test_store_false_keeps_continuity_but_not_the_object(client, workspace):
    first = client.responses.create(model="m", input="one", store=False)
    assert first.store is False
    with pytest.raises(openai.NotFoundError, match="store was false"):
        client.responses.retrieve(first.id)
    client.responses.create(model="m", input="two", previous_response_id=first.id)
    assert workspace.invocations[1].conversation_id != ""


def test_unknown_ids_are_404_without_a_storage_read(client, workspace):
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.retrieve("not-an-id")
    assert caught.value.body["param"] == "response_id"
    assert "get" not in workspace.storage.ops


def test_large_answers_keep_continuity_only(inprocess, client, workspace):
    workspace.app(CHAT_APP).script = Script(answer="x" * 20_000, chunks=["x" * 20_000])
    first = client.responses.create(model="m", input="big")
    assert len(first.output_text) == 20_000
    with pytest.raises(openai.NotFoundError, match="larger than"):
        client.responses.retrieve(first.id)
    client.responses.create(model="m", input="again", previous_response_id=first.id)
    assert workspace.invocations[1].conversation_id != ""


# -- storage round trips -------------------------------------------------------------------


def test_one_read_to_continue_one_record_write_per_response(client, workspace):
    first = client.responses.create(model="m", input="one")
    assert workspace.storage.ops == ["exist", "set"]  # the record write (slot checked first)
    workspace.storage.ops.clear()
    client.responses.create(model="m", input="two", previous_response_id=first.id)
    assert workspace.storage.ops.count("get") == 1
    assert workspace.storage.ops.count("set") == 1


def test_storage_failure_does_not_lose_the_answer(client, workspace):
    workspace.storage.quota = 10
    r = client.responses.create(model="m", input="still answered?")
    assert r.output_text.endswith("still answered?")
    events = list(client.responses.create(model="m", input="stream", stream=True))
    assert events[-1].type == "response.completed"


# -- other app types -----------------------------------------------------------------------


def test_workflow_app_takes_the_input_in_query_variable(inprocess, workspace):
    workspace.add_app(App("app-wf", "workflow", user_input_form=[{"paragraph": {"variable": "question", "label": "Q"}}],
                          script=Script(answer="It is {inputs[question]}", outputs={"answer": "It is {inputs[question]}"})))  # fmt: skip
    client = openai_client(inprocess, settings_for("app-wf", query_variable="question"))
    r = client.responses.create(model="m", input="noon?")
    assert r.output_text == "It is noon?" and r.usage.total_tokens == 20
    assert workspace.invocations[-1].inputs == {"question": "noon?"}
    events = list(client.responses.create(model="m", input="noon?", stream=True))
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert deltas == [
        e["data"]["text"] for e in workspace.emitted[-1] if e["event"] == "text_chunk"
    ]
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="m", input="more", previous_response_id=r.id)
    assert caught.value.body["param"] == "previous_response_id"


def test_completion_app(inprocess):
    client = openai_client(inprocess, settings_for("app-completion-0001"))
    assert client.responses.create(model="m", input="sum up").output_text.startswith(
        "Hello from Completion"
    )


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"tools": [{"type": "function", "name": "f", "parameters": {}}]}, "tools"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"reasoning": {"effort": "low"}}, "reasoning"),
        ({"background": True}, "background"),
        ({"include": ["reasoning.encrypted_content"]}, "include"),
        ({"conversation": "conv_1"}, "conversation"),
        ({"text": {"format": {"type": "json_object"}}}, "text.format"),
        ({"input": [{"type": "function_call_output", "call_id": "c", "output": "x"}]}, "input[0]"),
        (
            {
                "input": [
                    {
                        "role": "user",
                        "content": [{"type": "input_image", "image_url": "https://x/y.png"}],
                    }
                ]
            },
            "input[0].content[0]",
        ),
        ({"input": [{"role": "tool", "content": "x"}]}, "input[0].role"),
        ({"input": [{"role": "assistant", "content": "x"}]}, "input"),
        ({"input": []}, "input"),
        ({"metadata": {"k": 1}}, "metadata"),
        ({"user": 3}, "user"),
    ],
)
def test_unsupported_or_invalid_parameters_are_400_naming_them(inprocess, workspace, extra, param):
    r = post(inprocess, {"model": "m", "input": "hi", **extra})
    assert r.status == 400
    error = r.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"
    assert workspace.invocations == []


def test_harmless_defaults_are_accepted(client, workspace):
    r = client.responses.create(model="m", input="hi", tools=[], tool_choice="auto",
                                temperature=0.2, top_p=0.9, max_output_tokens=100,
                                text={"format": {"type": "text"}}, parallel_tool_calls=True)  # fmt: skip
    assert (r.status, r.temperature, r.top_p) == ("completed", 0.2, 0.9)


def test_bad_key_is_openai_401(inprocess, workspace):
    client = openai_client(inprocess, settings_for(), key="nope")
    with pytest.raises(openai.AuthenticationError) as caught:
        client.responses.create(model="m", input="q")
    assert caught.value.body["code"] == "invalid_api_key"
    assert workspace.invocations == []


def test_failure_before_the_stream_is_an_http_error(client, workspace):
    workspace.app(CHAT_APP).script = Script(
        raise_before=inner_api_error("Rate limited", code="too_many_requests", status=429)
    )
    with pytest.raises(openai.RateLimitError):
        client.responses.create(model="m", input="q", stream=True)


def test_mid_stream_failure_is_response_failed_then_the_end(inprocess, workspace):
    workspace.app(CHAT_APP).script = Script(answer="a b c d", error_after=2)
    events = sse_events(post(inprocess, {"input": "q", "stream": True}))
    names = [n for n, _, _ in events]
    assert names == [*OPENING, "response.output_text.delta", "response.output_text.delta",
                     "response.failed"]  # fmt: skip
    failed = events[-1][1].response
    assert failed.status == "failed" and failed.error.code == "invalid_prompt"
    assert "model provider failed" in failed.error.message
    assert [raw["sequence_number"] for _, _, raw in events] == list(range(len(events)))


def test_failure_after_a_keepalive_still_opens_the_response(inprocess, workspace, monkeypatch):
    """Once a keep-alive went out the status is sent: the failure is an event, after created."""
    monkeypatch.setattr(openai_responses, "KEEPALIVE_INTERVAL", 0.05)
    workspace.app(CHAT_APP).script = Script(first_delay=0.3, error_after=0)
    r = post(inprocess, {"input": "q", "stream": True})
    assert r.status == 200 and r.text.startswith(": keepalive")
    names = [n for n, _, _ in sse_events(r)]
    assert names == [*OPENING, "response.failed"]


def test_output_moderation_replacement_is_incomplete_content_filter(inprocess, workspace):
    workspace.app(CHAT_APP).script = Script(answer="bad words", replace_with="[removed]")
    events = sse_events(post(inprocess, {"input": "q", "stream": True}))
    final = events[-1][1]
    assert final.type == "response.incomplete"
    assert final.response.incomplete_details.reason == "content_filter"
    assert final.response.output_text.endswith("[removed]")
    body = post(inprocess, {"input": "q"}).json()
    assert (body["output_text"], body["status"]) == ("[removed]", "incomplete")


@pytest.mark.parametrize(
    ("method", "path", "family"),
    [
        ("POST", "/v1/embeddings", "openai"),
        ("POST", "/v1/completions", "openai"),
        ("POST", "/v1/audio/transcriptions", "openai"),
        ("GET", "/v1/models/app-bridge", "openai"),
        ("GET", "/v1/files", "openai"),
        ("POST", "/v1/files/upload", "dify"),
        ("GET", "/v1/conversations", "dify"),
        ("GET", "/v1/messages", "dify"),
        ("POST", "/v1/audio-to-text", "dify"),
    ],
)
def test_unknown_paths_answer_in_their_family_format(inprocess, method, path, family):
    r = inprocess.request(method, path, settings=settings_for(), headers=AUTH, body=b"{}")
    assert r.status == 404
    body = r.json()
    if family == "openai":
        assert body["error"]["code"] == "not_found" and body["error"]["type"]
    else:
        assert body["code"] == "not_found" and body["status"] == 404


def test_wrong_method_on_a_response_is_openai_405(inprocess):
    r = inprocess.request("DELETE", "/v1/responses/resp_x", settings=settings_for(), headers=AUTH)
    assert r.status == 405 and r.header("Allow") == "GET, HEAD"
    assert r.json()["error"]["code"] == "method_not_allowed"


def test_unknown_openai_path_with_the_client(client):
    with pytest.raises(openai.NotFoundError) as caught:
        client.embeddings.create(model="m", input="x")
    assert caught.value.body["code"] == "not_found"
