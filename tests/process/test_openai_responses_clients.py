"""The real ``openai`` SDK's Responses API against the local runner (plugin over stdio)."""

import json

import httpx2
import openai
import pytest
from openai import OpenAI
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

CHAT_HOOK, FLOW_HOOK, WORKFLOW_HOOK = "demochat00000001", "demoflow00000001", "demoworkflow0001"
EVENTS = TypeAdapter(ResponseStreamEvent)


def client(runner, hook, key="demo-key"):
    return OpenAI(base_url=f"{runner[0]}/e/{hook}/v1", api_key=key, max_retries=0, timeout=20)


def runs_since(runner, before):
    return runner[1].workspace.invocations[before:]


def test_create_blocking(runner):
    r = client(runner, CHAT_HOOK).responses.create(model="app-bridge", input="hello")
    assert r.id.startswith("resp_") and r.status == "completed"
    assert r.output_text == "Hello ! You said: hello"
    assert r.usage.total_tokens == 20


def test_create_stream_events_in_order_with_valid_shapes(runner):
    with httpx2.stream(
        "POST",
        f"{runner[0]}/e/{FLOW_HOOK}/v1/responses",
        headers={"Authorization": "Bearer demo-key"},
        json={"input": "stream please", "stream": True},
        timeout=20,
    ) as r:
        assert r.status_code == 200
        body = r.read().decode()
    events = []
    for frame in body.split("\n\n"):
        if frame and not frame.startswith(":"):
            name, data = frame.split("\n")
            event = EVENTS.validate_python(json.loads(data[6:]))
            assert name == f"event: {event.type}"
            events.append(event)
    names = [e.type for e in events]
    assert names[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert names[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert set(names[4:-4]) == {"response.output_text.delta"}
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == events[-1].response.output_text == "Chatflow answer to: stream please"


def test_create_stream_true_and_stream_helper(runner):
    c = client(runner, CHAT_HOOK)
    events = list(c.responses.create(model="m", input="streamed", stream=True))
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    with c.responses.stream(model="m", input="helper") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text == "Hello ! You said: helper"


def test_previous_response_id_continues_and_retrieve(runner):
    c = client(runner, CHAT_HOOK)
    before = len(runner[1].workspace.invocations)
    first = c.responses.create(model="m", input="first (responses)", user="carol")
    second = c.responses.create(
        model="m", input="second", previous_response_id=first.id, user="carol"
    )
    one, two = runs_since(runner, before)
    assert one.conversation_id == "" and two.conversation_id != ""
    assert (two.query, two.user) == ("second", "carol")
    emitted = runner[1].workspace.emitted[-2][0]
    assert two.conversation_id == emitted["conversation_id"]
    got = c.responses.retrieve(second.id)
    assert (got.id, got.output_text, got.previous_response_id) == (
        second.id,
        "Hello ! You said: second",
        first.id,
    )


def test_another_user_cannot_continue(runner):
    c = client(runner, CHAT_HOOK)
    first = c.responses.create(model="m", input="private", user="dave")
    before = len(runner[1].workspace.invocations)
    with pytest.raises(openai.NotFoundError) as caught:
        c.responses.create(model="m", input="steal", previous_response_id=first.id, user="eve")
    assert caught.value.body["param"] == "previous_response_id"
    assert runs_since(runner, before) == []
    with pytest.raises(openai.NotFoundError):  # nor another endpoint
        client(runner, FLOW_HOOK).responses.create(
            model="m", input="x", previous_response_id=first.id, user="dave"
        )


def test_workflow_app_with_extra_inputs(runner):
    c = client(runner, WORKFLOW_HOOK)
    with pytest.raises(openai.BadRequestError, match="city is required"):
        c.responses.create(model="m", input="weather?")
    r = c.responses.create(model="m", input="weather?", extra_body={"inputs": {"city": "Oslo"}})
    assert r.output_text == "Sunny in Oslo, 21 °C"
    events = list(
        c.responses.create(
            model="m", input="weather?", stream=True, extra_body={"inputs": {"city": "Bergen"}}
        )
    )
    assert events[-1].response.output_text == "Sunny in Bergen, 21 °C"


def test_unsupported_parameter_and_unknown_path(runner):
    c = client(runner, CHAT_HOOK)
    with pytest.raises(openai.BadRequestError) as caught:
        c.responses.create(
            model="m",
            input="x",
            tools=[{"type": "function", "name": "f", "parameters": {}, "strict": True}],
        )
    assert caught.value.body["param"] == "tools"
    with pytest.raises(openai.NotFoundError) as caught:
        c.embeddings.create(model="m", input="x")
    assert caught.value.body["code"] == "not_found"


def test_mid_stream_failure_is_response_failed(runner):
    app = runner[1].workspace.app("5b0f7a2e-0c1d-4a61-9a0e-0000000000ac")
    original = app.script
    app.script = type(original)(answer="one two three four", error_after=3, delay=0.0)
    try:
        events = list(
            client(runner, FLOW_HOOK).responses.create(model="m", input="fail", stream=True)
        )
    finally:
        app.script = original
    assert events[0].type == "response.created"
    assert events[-1].type == "response.failed"
    assert "model provider failed" in events[-1].response.error.message
