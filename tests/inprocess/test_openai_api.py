"""OpenAI facade through the SDK's executor."""

import json

import pytest
from conftest import CHAT_APP, SETTINGS

from devkit.workspace import App, Script, inner_api_error

AUTH = {"Authorization": "Bearer test-key", "Content-Type": "application/json"}


def completions(inprocess, body, *, app_id=CHAT_APP, headers=AUTH, settings=None):
    settings = settings or {**SETTINGS, "app": {"app_id": app_id}}
    return inprocess.request(
        "POST",
        "/v1/chat/completions",
        settings=settings,
        headers=headers,
        body=json.dumps(body).encode(),
    )


def chunks(response):
    frames = [f for f in response.text.split("\n\n") if f]
    assert frames[-1] == "data: [DONE]"
    return [json.loads(f[6:]) for f in frames[:-1] if f.startswith("data: ")]


def user(text):
    return {"role": "user", "content": text}


def test_models(inprocess):
    r = inprocess.request(
        "GET", "/v1/models", settings={**SETTINGS, "model_name": "support-bot"}, headers=AUTH
    )
    assert r.json() == {
        "object": "list",
        "data": [
            {
                "id": "support-bot",
                "object": "model",
                "created": 1795305600,
                "owned_by": "app-bridge",
            }
        ],
    }


def test_non_stream_completion_object(inprocess):
    r = completions(inprocess, {"model": "anything", "messages": [user("hi")]})
    assert r.status == 200 and r.header("Content-Type") == "application/json"
    body = r.json()
    assert list(body) == [
        "id",
        "object",
        "created",
        "model",
        "choices",
        "usage",
        "system_fingerprint",
    ]
    assert body["object"] == "chat.completion" and body["model"] == "app-bridge"
    assert body["choices"][0]["message"]["content"] == "Hello from Chat. You said: hi"
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 20}
    assert r.header("X-Conversation-Id")


def test_stream_chunks(inprocess):
    r = completions(
        inprocess,
        {"messages": [user("a b c")], "stream": True, "stream_options": {"include_usage": True}},
    )
    assert r.header("Content-Type") == "text/event-stream; charset=utf-8"
    parts = chunks(r)
    assert parts[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    content = [p["choices"][0]["delta"].get("content", "") for p in parts if p["choices"]]
    assert "".join(content) == "Hello from Chat. You said: a b c"
    assert parts[-2]["choices"][0]["finish_reason"] == "stop"
    assert parts[-1]["choices"] == [] and parts[-1]["usage"]["total_tokens"] == 20
    assert all(p["object"] == "chat.completion.chunk" and p["id"] == parts[0]["id"] for p in parts)
    assert b"event: ping" not in r.body


def test_usage_chunk_only_when_asked(inprocess):
    parts = chunks(completions(inprocess, {"messages": [user("x")], "stream": True}))
    assert all(p["choices"] for p in parts)


def test_content_part_arrays_and_image_refusal(inprocess, workspace):
    r = completions(
        inprocess,
        {
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}],
                }
            ]
        },
    )
    assert r.status == 200
    assert workspace.invocations[-1].query == "one\ntwo"
    r = completions(
        inprocess,
        {
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}],
                }
            ]
        },
    )
    assert r.status == 400
    err = r.json()["error"]
    assert (
        err["type"] == "invalid_request_error"
        and err["param"] == "messages[0].content"
        and "image_url" in err["message"]
    )


def test_system_prompt_goes_to_declared_input_or_is_prepended(inprocess, workspace):
    completions(inprocess, {"messages": [{"role": "system", "content": "Be terse."}, user("hi")]})
    assert workspace.invocations[-1].query == "Be terse.\n\nhi"
    workspace.add_app(
        App(
            "app-sys",
            "chat",
            user_input_form=[{"paragraph": {"variable": "system_prompt", "label": "S"}}],
        )
    )
    completions(
        inprocess,
        {"messages": [{"role": "developer", "content": "Be terse."}, user("hi")]},
        app_id="app-sys",
    )
    inv = workspace.invocations[-1]
    assert (inv.query, inv.inputs) == ("hi", {"system_prompt": "Be terse."})


def test_three_turns_continue_one_conversation(inprocess, workspace):
    messages = [{"role": "system", "content": "s"}, user("turn one")]
    for turn in ("turn two", "turn three", None):
        r = completions(inprocess, {"messages": messages})
        messages += [{"role": "assistant", "content": r.json()["choices"][0]["message"]["content"]}]
        if turn:
            messages.append(user(turn))
    first, second, third = workspace.invocations
    assert first.conversation_id == ""
    conversation = r.header("X-Conversation-Id")
    assert (second.query, second.conversation_id) == ("turn two", conversation)
    assert (third.query, third.conversation_id) == ("turn three", conversation)


def test_streamed_turns_continue_too(inprocess, workspace):
    r = completions(inprocess, {"messages": [user("one")], "stream": True})
    answer = "".join(p["choices"][0]["delta"].get("content", "") for p in chunks(r))
    completions(
        inprocess,
        {
            "messages": [user("one"), {"role": "assistant", "content": answer}, user("two")],
            "stream": True,
        },
    )
    assert workspace.invocations[1].conversation_id == r.header("X-Conversation-Id") != ""


def test_edited_history_starts_a_new_conversation(inprocess, workspace):
    r = completions(inprocess, {"messages": [user("one")]})
    completions(
        inprocess,
        {
            "messages": [
                user("one"),
                {"role": "assistant", "content": "something else"},
                user("two"),
            ]
        },
    )
    assert workspace.invocations[1].conversation_id == ""
    assert r.status == 200


def test_same_transcript_of_two_users_never_joins_conversations(inprocess, workspace):
    """A deterministic app answers alike: the shared digest is ambiguous, not reused."""
    answer = completions(inprocess, {"messages": [user("hi")]}).json()["choices"][0]["message"][
        "content"
    ]
    completions(inprocess, {"messages": [user("hi")]})  # someone else, same words, same answer
    completions(
        inprocess,
        {"messages": [user("hi"), {"role": "assistant", "content": answer}, user("next")]},
    )
    assert workspace.invocations[2].conversation_id == ""


def test_user_field_separates_transcripts(inprocess, workspace):
    answer = completions(inprocess, {"messages": [user("hi")], "user": "alice"}).json()["choices"][
        0
    ]["message"]["content"]
    completions(
        inprocess,
        {
            "messages": [user("hi"), {"role": "assistant", "content": answer}, user("x")],
            "user": "bob",
        },
    )
    assert workspace.invocations[1].conversation_id == ""


def test_conversation_header_override_and_ownership(inprocess, workspace):
    r = completions(inprocess, {"messages": [user("hi")], "user": "alice"})
    conversation = r.header("X-Conversation-Id")
    completions(
        inprocess,
        {"messages": [user("again")], "user": "alice"},
        headers={**AUTH, "X-Conversation-Id": conversation},
    )
    assert workspace.invocations[-1].conversation_id == conversation
    r = completions(
        inprocess,
        {"messages": [user("steal")], "user": "bob"},
        headers={**AUTH, "X-Conversation-Id": conversation},
    )
    assert r.status == 404 and r.json()["error"]["code"] == "not_found"


def test_stale_conversation_is_reset_and_retried_once(inprocess, workspace):
    first = completions(inprocess, {"messages": [user("one")]})
    workspace.forget_conversation(first.header("X-Conversation-Id"))
    answer = first.json()["choices"][0]["message"]["content"]
    r = completions(
        inprocess,
        {"messages": [user("one"), {"role": "assistant", "content": answer}, user("two")]},
    )
    assert r.status == 200
    assert [i.conversation_id == "" for i in workspace.invocations] == [True, False, True]
    assert r.header("X-Conversation-Id") != first.header("X-Conversation-Id")


def test_workflow_app_takes_the_last_message_in_query_variable(inprocess, workspace):
    workspace.add_app(App("app-wf", "workflow", user_input_form=[{"paragraph": {"variable": "question", "label": "Q"}}],
                          script=Script(answer="It is {inputs[question]}", outputs={"answer": "It is {inputs[question]}"})))  # fmt: skip
    settings = {**SETTINGS, "app": {"app_id": "app-wf"}, "query_variable": "question"}
    r = completions(inprocess, {"messages": [user("noon?")]}, settings=settings)
    assert r.json()["choices"][0]["message"]["content"] == "It is noon?"
    assert workspace.invocations[-1].inputs == {"question": "noon?"}
    parts = chunks(
        completions(inprocess, {"messages": [user("noon?")], "stream": True}, settings=settings)
    )
    assert "".join(p["choices"][0]["delta"].get("content", "") for p in parts) == "It is noon?"
    assert r.header("X-Conversation-Id") is None


def test_completion_app(inprocess, workspace):
    r = completions(inprocess, {"messages": [user("sum up")]}, app_id="app-completion-0001")
    assert r.json()["choices"][0]["message"]["content"].startswith("Hello from Completion")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "assistant", "content": "x"}]}, "messages"),
        ({"messages": [{"role": "tool", "content": "x"}, user("q")]}, "messages[0].role"),
        ({"messages": [user("q")], "user": 3}, "user"),
    ],
)
def test_validation_errors_in_openai_schema(inprocess, workspace, body, param):
    r = completions(inprocess, body)
    assert r.status == 400
    assert r.json()["error"]["param"] == param
    assert workspace.invocations == []


def test_bad_key_is_openai_401(inprocess, workspace):
    r = completions(
        inprocess,
        {"messages": [user("q")]},
        headers={"Authorization": "Bearer nope", "Content-Type": "application/json"},
    )
    assert r.status == 401
    assert r.json()["error"]["code"] == "invalid_api_key"
    assert workspace.invocations == []


def test_failure_before_stream_is_an_http_error(inprocess, workspace):
    workspace.app(CHAT_APP).script = Script(
        raise_before=inner_api_error("Rate limited", code="too_many_requests", status=429)
    )
    r = completions(inprocess, {"messages": [user("q")], "stream": True})
    assert r.status == 429
    assert r.json()["error"]["type"] == "rate_limit_error"


def test_mid_stream_error_is_a_final_error_chunk(inprocess, workspace):
    workspace.app(CHAT_APP).script = Script(answer="a b c d", error_after=2)
    r = completions(inprocess, {"messages": [user("q")], "stream": True})
    frames = [f for f in r.text.split("\n\n") if f]
    last = json.loads(frames[-1][6:])
    assert last["error"]["code"] == "completion_request_error"
    assert "[DONE]" not in r.text


def test_storage_failure_does_not_lose_the_answer(inprocess, workspace):
    workspace.storage.quota = 10  # every write is refused
    r = completions(inprocess, {"messages": [user("still answered?")]})
    assert r.status == 200
    assert r.json()["choices"][0]["message"]["content"].endswith("still answered?")
    parts = chunks(completions(inprocess, {"messages": [user("stream")], "stream": True}))
    assert parts[-1]["choices"][0]["finish_reason"] == "stop"


def test_output_moderation_replacement_reaches_stream_clients(inprocess, workspace):
    workspace.app(CHAT_APP).script = Script(
        answer="bad words", replace_with="[removed by moderation]"
    )
    parts = chunks(completions(inprocess, {"messages": [user("q")], "stream": True}))
    text = "".join(p["choices"][0]["delta"].get("content", "") for p in parts)
    assert text.endswith("[removed by moderation]")
    assert parts[-1]["choices"][0]["finish_reason"] == "content_filter"
    blocking = completions(inprocess, {"messages": [user("q")]}).json()["choices"][0]
    assert (blocking["message"]["content"], blocking["finish_reason"]) == (
        "[removed by moderation]",
        "content_filter",
    )
