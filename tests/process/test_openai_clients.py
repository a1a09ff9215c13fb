"""The real ``openai`` SDK against the local runner (max_retries=0)."""

import openai
import pytest
from openai import OpenAI


def client(runner, hook, key="demo-key"):
    return OpenAI(base_url=f"{runner[0]}/e/{hook}/v1", api_key=key, max_retries=0, timeout=20)


def test_models_list(runner):
    models = client(runner, "demochat00000001").models.list()
    assert [m.id for m in models.data] == ["app-bridge"]


def test_non_stream_and_usage(runner):
    r = client(runner, "demochat00000001").chat.completions.create(
        model="app-bridge", messages=[{"role": "user", "content": "hello"}]
    )
    assert r.choices[0].message.content == "Hello ! You said: hello"
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.total_tokens == 20


def test_stream_assembles_without_parser_errors(runner):
    stream = client(runner, "demoflow00000001").chat.completions.create(
        model="m", messages=[{"role": "user", "content": "stream please"}], stream=True,
        stream_options={"include_usage": True},
    )  # fmt: skip
    text, usage = "", None
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        if chunk.usage:
            usage = chunk.usage
    assert text == "Chatflow answer to: stream please"
    assert usage.total_tokens == 20


def test_content_part_arrays(runner):
    r = client(runner, "demoagent0000001").chat.completions.create(
        model="m", messages=[{"role": "user", "content": [{"type": "text", "text": "parts work"}]}]
    )
    assert r.choices[0].message.content == "I looked into it: parts work"


def test_three_turn_chat_continues_one_conversation(runner):
    _, bridge = runner
    c = client(runner, "demochat00000001")
    messages = [{"role": "user", "content": "first (openai three-turn)"}]
    before = len(bridge.workspace.invocations)
    for follow_up in ("second", "third", None):
        r = c.chat.completions.create(model="m", messages=messages)
        messages.append({"role": "assistant", "content": r.choices[0].message.content})
        if follow_up:
            messages.append({"role": "user", "content": follow_up})
    runs = bridge.workspace.invocations[before:]
    assert [run.query for run in runs] == ["first (openai three-turn)", "second", "third"]
    assert runs[0].conversation_id == ""
    assert runs[1].conversation_id == runs[2].conversation_id != ""


def test_workflow_app(runner):
    c = client(runner, "demoworkflow0001")
    with pytest.raises(openai.BadRequestError, match="city is required in input form"):
        c.chat.completions.create(model="m", messages=[{"role": "user", "content": "weather?"}])
    r = c.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "weather?"}],
        extra_body={"inputs": {"city": "Oslo"}},
    )
    assert r.choices[0].message.content == "Sunny in Oslo, 21 °C"
    stream = c.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "weather?"}], stream=True,
        extra_body={"inputs": {"city": "Bergen"}},
    )  # fmt: skip
    assert (
        "".join(ch.choices[0].delta.content or "" for ch in stream if ch.choices)
        == "Sunny in Bergen, 21 °C"
    )


def test_bad_key_is_authentication_error(runner):
    with pytest.raises(openai.AuthenticationError) as caught:
        client(runner, "demochat00000001", key="wrong").chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.status_code == 401
    assert caught.value.body["code"] == "invalid_api_key"


def test_mid_stream_error_raises_api_error(runner):
    _, bridge = runner
    app = bridge.workspace.app("5b0f7a2e-0c1d-4a61-9a0e-0000000000ac")
    original = app.script
    app.script = type(original)(answer="one two three four", error_after=3, delay=0.0)
    try:
        stream = client(runner, "demoflow00000001").chat.completions.create(
            model="m", messages=[{"role": "user", "content": "fail midway"}], stream=True
        )
        with pytest.raises(openai.APIError) as caught:
            for _ in stream:
                pass
        assert "model provider failed" in caught.value.message
    finally:
        app.script = original
