"""The emulated workspace produces Dify's exact shapes (protocol.md §1.4–1.6, §6)."""

import json

import pytest

from devkit.workspace import REASONING_NODE, App, InvocationFailed, Script, Storage, Workspace


def run(ws, **request):
    request.setdefault("inputs", {})
    request.setdefault("response_mode", "streaming")
    return list(ws.answer("app", request))


def sent(ws, **request):
    """The dicts as Dify's inner API sends them, before the daemon's Go re-encoding."""
    request.setdefault("inputs", {})
    request.setdefault("response_mode", "streaming")
    return list(ws.run_app_raw(request))


def chunks(replies):
    assert replies[-1] == {"event": "end", "message": "", "data": None}
    return [r["data"] for r in replies[:-1] if r["event"] == "response"]


def test_chat_stream_matches_protocol_field_for_field():
    ws = Workspace([App("a1", "chat", script=Script(answer="Hi there"))])
    events = sent(ws, app_id="a1", query="hello")
    message, end = events[0], events[-1]
    assert list(message) == [
        "event", "conversation_id", "message_id", "created_at", "task_id", "id", "answer",
        "from_variable_selector",
    ]  # fmt: skip
    assert list(end) == [
        "event", "conversation_id", "message_id", "created_at", "task_id", "id", "metadata", "files",
    ]  # fmt: skip
    assert [e["event"] for e in events] == ["message", "message", "message_end"]
    assert "".join(e["answer"] for e in events[:-1]) == "Hi there"
    assert message["id"] == message["message_id"] == end["id"]
    assert {e["conversation_id"] for e in events} == {message["conversation_id"]}
    assert isinstance(message["created_at"], int)
    assert end["metadata"]["usage"]["total_tokens"] == 20


@pytest.mark.parametrize(
    ("mode", "sequence"),
    [
        ("agent-chat", ["agent_thought", "agent_message", "agent_thought", "message_end"]),
        ("completion", ["message", "message_end"]),
        (
            "advanced-chat",
            [
                "workflow_started",
                "node_started",
                "node_finished",
                "node_started",
                "message",
                "node_finished",
                "node_started",
                "node_finished",
                "workflow_finished",
                "message_end",
            ],
        ),
        (
            "workflow",
            [
                "workflow_started",
                "node_started",
                "node_finished",
                "node_started",
                "text_chunk",
                "node_finished",
                "node_started",
                "node_finished",
                "workflow_finished",
            ],
        ),
    ],
)
def test_event_sequences(mode, sequence):
    ws = Workspace([App("a", mode, script=Script(answer="one"))])
    events = chunks(run(ws, app_id="a", query="q"))
    assert [e["event"] for e in events] == sequence


def test_envelopes_per_mode():
    ws = Workspace([App("c", "completion"), App("w", "workflow")])
    completion = sent(ws, app_id="c")[0]
    assert list(completion)[:3] == ["event", "message_id", "created_at"]
    assert "conversation_id" not in completion
    workflow = sent(ws, app_id="w")[0]
    assert list(workflow)[:4] == ["event", "workflow_run_id", "task_id", "data"]


def test_blocking_shapes():
    ws = Workspace([App("c", "chat"), App("p", "completion"), App("w", "workflow")])
    (chat,) = sent(ws, app_id="c", query="q", response_mode="blocking")
    assert list(chat) == [
        "event", "task_id", "id", "message_id", "conversation_id", "mode", "answer", "metadata", "created_at",
    ]  # fmt: skip
    (completion,) = chunks(run(ws, app_id="p", response_mode="blocking"))
    assert "conversation_id" not in completion and completion["mode"] == "completion"
    (workflow,) = sent(ws, app_id="w", response_mode="blocking")
    assert list(workflow) == ["task_id", "workflow_run_id", "data"]
    assert list(workflow["data"]) == [
        "id", "workflow_id", "status", "outputs", "error", "elapsed_time", "total_tokens",
        "total_steps", "created_at", "finished_at",
    ]  # fmt: skip


def error_text(replies):
    assert replies[-2]["event"] == "error" and replies[-1]["event"] == "end"
    return replies[-2]["message"]


def test_daemon_error_texts():
    ws = Workspace([App("c", "chat"), App("g", "agent-chat")])
    prefix = "invoke app failed: request failed with status code: 400 and respond with: "
    missing = error_text(run(ws, app_id="c", query=""))
    assert (
        missing == prefix + '{"code": "invalid_param", "message": "missing query", "status": 400}\n'
    )
    assert "app not found" in error_text(run(ws, app_id="nope", query="q"))
    blocking = error_text(run(ws, app_id="g", query="q", response_mode="blocking"))
    assert "Agent Chat App does not support blocking mode" in blocking
    assert '"message": ""' in error_text(run(ws, app_id="c", query="q", conversation_id="x"))
    assert "invalid payload" in error_text(run(ws, app_id="c", query="q", inputs=None))


def test_required_inputs_are_validated_before_streaming():
    form = [{"text-input": {"variable": "city", "label": "City", "required": True}}]
    ws = Workspace([App("w", "workflow", user_input_form=form)])
    assert "city is required in input form" in error_text(run(ws, app_id="w"))
    assert chunks(run(ws, app_id="w", inputs={"city": "Paris"}))


def test_mid_stream_error_event_and_exception_before_stream():
    ws = Workspace([App("c", "chat", script=Script(answer="a b c", error_after=2))])
    events = sent(ws, app_id="c", query="q")
    assert [e["event"] for e in events] == ["message", "message", "error"]
    assert list(events[-1]) == [
        "event",
        "conversation_id",
        "message_id",
        "created_at",
        "code",
        "message",
        "status",
    ]
    ws.app("c").script = Script(raise_before="read app failed: request failed: boom")
    assert error_text(run(ws, app_id="c", query="q")) == "read app failed: request failed: boom"


def test_conversations_continue_and_go_stale():
    ws = Workspace([App("c", "chat")])
    first = chunks(run(ws, app_id="c", query="q"))[0]["conversation_id"]
    assert (
        chunks(run(ws, app_id="c", query="q", conversation_id=first))[0]["conversation_id"] == first
    )
    ws.forget_conversation(first)
    assert '"message": ""' in error_text(run(ws, app_id="c", query="q", conversation_id=first))


def test_invocations_are_recorded_as_dify_receives_them():
    ws = Workspace([App("c", "chat")])
    run(ws, app_id="c", query="hi", inputs={"x": 1}, conversation_id=None, user=None)
    (inv,) = ws.invocations
    assert (inv.query, inv.inputs, inv.conversation_id, inv.user) == ("hi", {"x": 1}, "", "")


def test_fetch_app_returns_parameters():
    form = [{"paragraph": {"variable": "q", "label": "Q", "required": True}}]
    ws = Workspace([App("w", "workflow", user_input_form=form)])
    (reply, end) = list(ws.answer("fetch_app", {"app_id": "w"}))
    assert reply["message"] == "struct" and end["event"] == "end"
    assert reply["data"]["user_input_form"] == form
    assert ws.fetches == ["w"]


def test_storage_semantics_and_quota():
    storage = Storage(quota=10)
    assert storage.handle({"opt": "set", "key": "k", "value": b"12345".hex()}) == {"data": "ok"}
    assert storage.handle({"opt": "exist", "key": "k"}) == {"data": True, "exist_num": 1}
    # overwrites are charged again (the daemon adds len(value) on every set)
    storage.handle({"opt": "set", "key": "k", "value": b"12345".hex()})
    assert storage.used == 10
    with pytest.raises(InvocationFailed, match="allocated size is greater than max storage size"):
        storage.handle({"opt": "set", "key": "k2", "value": b"1".hex()})
    assert "k2" in storage.data  # written before the check, as the daemon does
    with pytest.raises(InvocationFailed, match="load data failed"):
        storage.handle({"opt": "get", "key": "missing"})
    with pytest.raises(InvocationFailed, match="path traversal"):
        storage.handle({"opt": "get", "key": "a/../../b"})
    with pytest.raises(InvocationFailed, match="256"):
        storage.handle({"opt": "set", "key": "k" * 257, "value": ""})


def test_demo_workspace_has_every_mode():
    from devkit.runner import DEMO_CONFIG

    ws = Workspace.from_yaml(DEMO_CONFIG)
    assert {a.mode for a in ws.apps.values()} == {
        "chat", "agent-chat", "advanced-chat", "completion", "workflow",
    }  # fmt: skip
    scripts = [a.script for a in ws.apps.values()]
    assert any(s.reasoning for s in scripts) and any(s.pause for s in scripts)  # Dify 1.15 demos
    json.dumps([a.parameters() for a in ws.apps.values()])


# -- the daemon's hop and Dify 1.15 events -------------------------------------------------


def test_go_reencode_matches_what_the_real_daemon_delivered():
    """Values seen on the real daemon (docs/real-daemon.md): sorted keys, Go float64 output."""
    from devkit.workspace import go_reencode

    delivered = go_reencode({"n": 2.0, "x": 0.25, "big": 2**60 + 1, "ok": 2**53, "t": True,
                             "nested": [{"b": 1, "a": None}]})  # fmt: skip
    assert list(delivered) == ["big", "n", "nested", "ok", "t", "x"]
    assert delivered["n"] == 2 and type(delivered["n"]) is int
    assert delivered["big"] == 1152921504606847000  # the real daemon's output for 2**60 + 1
    assert delivered["ok"] == 2**53 and delivered["t"] is True and delivered["x"] == 0.25
    assert list(delivered["nested"][0]) == ["a", "b"]


def test_plugin_receives_sorted_keys_and_ints():
    ws = Workspace([App("w", "workflow", script=Script(outputs={"v": 3.0}))])
    events = chunks(run(ws, app_id="w"))
    assert all(list(e) == sorted(e) for e in events)
    finished = events[-1]
    assert finished["event"] == "workflow_finished" and finished["data"]["outputs"] == {"v": 3}
    assert ws.emitted == [events]  # recorded as delivered


def test_dify_115_node_and_start_fields():
    ws = Workspace([App("w", "workflow")])
    events = sent(ws, app_id="w")
    assert events[0]["data"]["reason"] == "initial"
    started = next(e for e in events if e["event"] == "node_started")["data"]
    finished = next(e for e in events if e["event"] == "node_finished")["data"]
    assert not [k for k in (*started, *finished) if k.startswith("parallel")]
    assert started["inputs_truncated"] is False
    assert finished["outputs_truncated"] is False and finished["process_data_truncated"] is False


@pytest.mark.parametrize("mode", ["advanced-chat", "workflow"])
def test_reasoning_chunks_then_answer(mode):
    ws = Workspace([App("a", mode, script=Script(answer="ok", reasoning="think more"))])
    events = sent(ws, app_id="a", query="q")
    chunks_ = [e for e in events if e["event"] == "reasoning_chunk"]
    assert "".join(c["data"]["reasoning"] for c in chunks_) == "think more"
    assert [c["data"]["is_final"] for c in chunks_] == [False, False, True]
    assert list(chunks_[0]["data"]) == ["message_id", "reasoning", "node_id", "is_final"]
    first_text = next(i for i, e in enumerate(events) if e["event"] in ("message", "text_chunk"))
    assert events.index(chunks_[-1]) < first_text
    if mode == "advanced-chat":
        assert events[-1]["metadata"]["reasoning"] == {REASONING_NODE: "think more"}


@pytest.mark.parametrize("mode", ["advanced-chat", "workflow"])
def test_pause_ends_the_stream_with_workflow_paused(mode):
    ws = Workspace([App("a", mode, script=Script(pause=True))])
    events = sent(ws, app_id="a", query="q")
    assert [e["event"] for e in events[-3:]] == [
        "node_started", "human_input_required", "workflow_paused",
    ]  # fmt: skip
    required, paused = events[-2]["data"], events[-1]["data"]
    assert list(required) == [
        "form_id", "node_id", "node_title", "form_content", "inputs", "actions",
        "display_in_ui", "form_token", "resolved_default_values", "expiration_time",
    ]  # fmt: skip
    assert list(paused) == [
        "workflow_run_id", "paused_nodes", "outputs", "reasons", "status", "created_at",
        "elapsed_time", "total_tokens", "total_steps",
    ]  # fmt: skip
    assert paused["outputs"] == {} and paused["status"] == "paused"
    assert paused["reasons"][0]["form_token"] == required["form_token"]
    assert not [e for e in events if e["event"] in ("workflow_finished", "message_end")]


def test_paused_blocking_shapes():
    ws = Workspace([App("f", "advanced-chat", script=Script(pause=True)),
                    App("w", "workflow", script=Script(pause=True))])  # fmt: skip
    (chat,) = sent(ws, app_id="f", query="q", response_mode="blocking")
    assert chat["event"] == "workflow_paused" and chat["workflow_run_id"]
    assert chat["data"]["reasons"][0]["TYPE"] == "human_input_required"
    (flow,) = sent(ws, app_id="w", response_mode="blocking")
    assert flow["data"]["status"] == "paused" and flow["data"]["paused_nodes"]
    assert list(flow["data"])[-2:] == ["paused_nodes", "reasons"]


def test_user_not_found_is_difys_inner_api_error():
    ws = Workspace([App("c", "chat")])
    ws.user_not_found = True
    assert error_text(run(ws, app_id="c", query="q")) == (
        "invoke app failed: request failed with status code: 400 and respond with: "
        '{"code": "invalid_param", "message": "user not found", "status": 400}\n'
    )
