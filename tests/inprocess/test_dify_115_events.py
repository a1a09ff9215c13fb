"""Dify 1.15+ events through every face (daemon-notes §D, §E).

The emulated workspace sends what Dify 1.15 sends and the daemon re-encodes it (keys sorted,
whole floats as ints): reasoning (``reasoning_chunk``, ``message_end.metadata.reasoning``),
Human Input pauses (``human_input_required`` → ``workflow_paused``), the human-input form
events, an invented future event, and Dify 1.15.0's ``user not found`` failure.
"""

import json

import pytest
from conftest import SETTINGS
from signers import settings as scheme_settings

from bridge.app.aggregate import PAUSED_TEXT
from bridge.app.dify_order import KNOWN_EVENTS
from bridge.protocols import extension
from bridge.storage import idempotency
from devkit.workspace import REASONING_NODE, App, Script, dify_frame, go_reencode, human_input_event

AUTH = {"Authorization": "Bearer test-key", "Content-Type": "application/json"}
REASONING = "First, recall the question. Then answer briefly."
FUTURE = {"event": "quantum_entanglement_started", "data": {"spin": 0.5, "whole": 3.0}}


@pytest.fixture(autouse=True)
def _fresh_flights():
    extension.FLIGHTS.__init__(ttl=300.0)
    idempotency.FLIGHTS.__init__(ttl=0)


@pytest.fixture
def apps(workspace):
    workspace.add_app(
        App(
            "think-flow",
            "advanced-chat",
            "Thinker",
            script=Script(answer="Forty two.", reasoning=REASONING),
        )
    )
    workspace.add_app(
        App("think-chat", "chat", "Thinker", script=Script(answer="Yes.", reasoning=REASONING))
    )
    workspace.add_app(
        App("think-wf", "workflow", "Thinker", script=Script(answer="Done.", reasoning=REASONING))
    )
    workspace.add_app(
        App("pause-flow", "advanced-chat", "Approver", script=Script(answer="Draft:", pause=True))
    )
    workspace.add_app(
        App("pause-wf", "workflow", "Approver", script=Script(answer="Draft", pause=True))
    )
    workspace.add_app(
        App(
            "future-chat",
            "chat",
            "Future",
            script=Script(
                answer="still fine",
                extra_events=[FUTURE, human_input_event("human_input_form_timeout")],
            ),
        )
    )
    workspace.add_app(
        App(
            "future-wf",
            "workflow",
            "Future",
            script=Script(
                answer="still fine",
                extra_events=[FUTURE, human_input_event("human_input_form_filled")],
            ),
        )
    )
    return workspace


def settings_for(app_id, **extra):
    return {**SETTINGS, "app": {"app_id": app_id}, **extra}


def post(inprocess, path, body, app_id, **settings):
    return inprocess.request(
        "POST",
        path,
        settings=settings_for(app_id, **settings),
        headers=AUTH,
        body=json.dumps(body).encode(),
    )


def sse(response):
    frames = response.text.split("\n\n")
    return [json.loads(f[6:]) for f in frames if f.startswith("data: ") and f != "data: [DONE]"]


CHAT = "/v1/chat-messages"
RUN = "/v1/workflows/run"


# -- Service API --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("app_id", "path"),
    [
        ("think-flow", CHAT),
        ("think-wf", RUN),
        ("pause-flow", CHAT),
        ("pause-wf", RUN),
        ("future-chat", CHAT),
        ("future-wf", RUN),
    ],
)
def test_service_api_stream_is_byte_for_byte_what_dify_would_send(inprocess, apps, app_id, path):
    r = post(inprocess, path, {"query": "q", "inputs": {}, "response_mode": "streaming"}, app_id)
    assert r.status == 200
    (delivered,) = apps.emitted
    (sent,) = apps.sent
    # Dify's own Service API writes each event as Dify built it (``sent``); an event App
    # Bridge does not know keeps the order it arrived in (the daemon's, sorted)
    expected = "".join(
        dify_frame(s if s["event"] in KNOWN_EVENTS else d)
        for s, d in zip(sent, delivered, strict=True)
    )
    assert r.text == expected  # every event, unknown ones included, in order, values unchanged
    names = [e["event"] for e in delivered]
    assert all(list(e) == sorted(e) for e in delivered)  # the daemon's Go map ordering
    if app_id.startswith("think"):
        assert "reasoning_chunk" in names
    if app_id.startswith("pause"):
        assert names[-2:] == ["human_input_required", "workflow_paused"]
    if app_id.startswith("future"):
        assert FUTURE["event"] in names
        assert delivered[names.index(FUTURE["event"])]["data"] == {"spin": 0.5, "whole": 3}
    started = [e for e in delivered if e["event"] == "workflow_started"]
    assert all(e["data"]["reason"] == "initial" for e in started)
    nodes = [e["data"] for e in delivered if e["event"].startswith("node_")]
    assert not any(k.startswith("parallel") for d in nodes for k in d)
    assert nodes or app_id == "future-chat"


def test_service_api_blocking_reasoning_chatflow(inprocess, apps):
    body = post(inprocess, CHAT, {"query": "q"}, "think-flow").json()
    assert body["event"] == "message"
    assert body["answer"] == "Forty two."  # reasoning never leaks into the answer
    assert body["metadata"]["reasoning"] == {REASONING_NODE: REASONING}  # per LLM node


def test_service_api_blocking_paused_chatflow_is_difys_paused_shape(inprocess, apps):
    r = post(inprocess, CHAT, {"query": "q"}, "pause-flow")
    assert r.status == 200
    body = r.json()
    assert list(body) == [
        "event", "task_id", "id", "message_id", "conversation_id", "mode", "answer", "metadata",
        "created_at", "workflow_run_id", "data",
    ]  # fmt: skip
    assert body["event"] == "workflow_paused"
    assert body["mode"] == "advanced-chat"
    assert body["answer"] == "Draft:"
    paused = body["data"]
    assert paused["status"] == "paused"
    assert paused["paused_nodes"] == ["1700000000003"]
    (reason,) = paused["reasons"]
    assert reason["TYPE"] == "human_input_required" and reason["form_token"]
    assert list(paused) == [  # AdvancedChatPausedBlockingResponse.Data, model_dump order
        "id", "mode", "conversation_id", "message_id", "workflow_run_id", "answer", "metadata",
        "created_at", "paused_nodes", "reasons", "status", "elapsed_time", "total_tokens",
        "total_steps",
    ]  # fmt: skip
    assert paused["workflow_run_id"] == body["workflow_run_id"]
    assert (paused["id"], paused["answer"]) == (body["id"], "Draft:")
    assert list(reason) == ["TYPE", "form_id", "node_id", "form_token", "expiration_time"]
    # the same keys, in the same order, as the emulated Dify answers in its own blocking mode
    (dify,) = apps.run_app_raw(
        {"app_id": "pause-flow", "query": "q", "inputs": {}, "response_mode": "blocking"}
    )
    assert list(body) == list(dify) and list(paused) == list(dify["data"])


def test_service_api_blocking_paused_workflow_is_difys_paused_shape(inprocess, apps):
    body = post(inprocess, RUN, {"inputs": {}}, "pause-wf").json()
    assert list(body) == ["task_id", "workflow_run_id", "data"]
    data = body["data"]
    assert list(data) == [
        "id", "workflow_id", "status", "outputs", "error", "elapsed_time", "total_tokens",
        "total_steps", "created_at", "finished_at", "paused_nodes", "reasons",
    ]  # fmt: skip
    assert (data["status"], data["outputs"], data["finished_at"]) == ("paused", {}, None)
    assert data["id"] == body["workflow_run_id"] and data["workflow_id"]
    assert data["reasons"][0]["TYPE"] == "human_input_required"
    (dify,) = apps.run_app_raw({"app_id": "pause-wf", "inputs": {}, "response_mode": "blocking"})
    assert list(dify["data"]) == list(data)


@pytest.mark.parametrize(("app_id", "path"), [("future-chat", CHAT), ("future-wf", RUN)])
def test_service_api_blocking_ignores_unknown_events(inprocess, apps, app_id, path):
    body = post(inprocess, path, {"query": "q", "inputs": {}}, app_id).json()
    if path == CHAT:
        assert body["answer"] == "still fine"
    else:
        assert body["data"]["status"] == "succeeded"


# -- OpenAI chat completions -------------------------------------------------------------


def openai(inprocess, app_id, *, stream):
    body = {"model": "x", "messages": [{"role": "user", "content": "q"}], "stream": stream}
    return post(inprocess, "/v1/chat/completions", body, app_id)


@pytest.mark.parametrize("app_id", ["think-flow", "think-chat", "think-wf"])
def test_openai_stream_puts_reasoning_in_its_own_delta(inprocess, apps, app_id):
    r = openai(inprocess, app_id, stream=True)
    deltas = [c["choices"][0]["delta"] for c in sse(r) if c.get("choices")]
    reasoning = "".join(d.get("reasoning_content", "") for d in deltas)
    content = "".join(d.get("content") or "" for d in deltas)
    assert reasoning == REASONING
    assert REASONING not in content and "recall" not in content
    assert (
        content == {"think-flow": "Forty two.", "think-chat": "Yes.", "think-wf": "Done."}[app_id]
    )
    assert not any("reasoning_content" in d and "content" in d for d in deltas)
    assert r.text.endswith("data: [DONE]\n\n")


@pytest.mark.parametrize("app_id", ["think-flow", "think-chat", "think-wf"])
def test_openai_blocking_reasoning_content(inprocess, apps, app_id):
    message = openai(inprocess, app_id, stream=False).json()["choices"][0]["message"]
    assert message["reasoning_content"] == REASONING
    assert REASONING not in message["content"]


@pytest.mark.parametrize("app_id", ["pause-flow", "pause-wf"])
def test_openai_paused_run_says_it_waits_for_input(inprocess, apps, app_id):
    blocking = openai(inprocess, app_id, stream=False).json()["choices"][0]
    assert blocking["message"]["content"].endswith(PAUSED_TEXT)
    assert blocking["finish_reason"] == "stop"
    stream = sse(openai(inprocess, app_id, stream=True))
    content = "".join(c["choices"][0]["delta"].get("content") or "" for c in stream if c["choices"])
    assert content.endswith(PAUSED_TEXT)
    assert stream[-1]["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize("app_id", ["future-chat", "future-wf"])
def test_openai_skips_unknown_events(inprocess, apps, app_id):
    stream = sse(openai(inprocess, app_id, stream=True))
    content = "".join(c["choices"][0]["delta"].get("content") or "" for c in stream if c["choices"])
    assert content == "still fine"
    assert (
        openai(inprocess, app_id, stream=False).json()["choices"][0]["message"]["content"]
        == "still fine"
    )


# -- API-based extension ----------------------------------------------------------------


def extension_call(inprocess, app_id, point="app.external_data_tool.query"):
    params = {"app_id": "x", "tool_variable": "weather", "inputs": {}, "query": "q"}
    return inprocess.request(
        "POST",
        "/extension",
        settings=settings_for(app_id),
        headers=AUTH,
        body=json.dumps({"point": point, "params": params}).encode(),
    )


def test_extension_result_has_no_reasoning(inprocess, apps):
    assert extension_call(inprocess, "think-flow").json() == {"result": "Forty two."}


def test_extension_paused_app_is_a_clear_424(inprocess, apps):
    r = extension_call(inprocess, "pause-wf")
    assert r.status == 424
    assert r.json()["message"] == PAUSED_TEXT


@pytest.mark.parametrize("app_id", ["future-chat", "future-wf"])
def test_extension_ignores_unknown_events(inprocess, apps, app_id):
    assert extension_call(inprocess, app_id).json() == {"result": "still fine"}


# -- webhook ------------------------------------------------------------------------------


def webhook(inprocess, app_id, response_mode):
    settings = {**scheme_settings("api_key", app_id), "webhook_response": response_mode}
    return inprocess.request(
        "POST",
        "/webhook",
        settings=settings,
        body=b'{"text": "hello"}',
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {settings['api_key']}",
        },
    )


@pytest.mark.parametrize("app_id", ["pause-flow", "pause-wf"])
def test_webhook_tells_the_caller_the_run_waits_for_input(inprocess, apps, app_id):
    text = webhook(inprocess, app_id, "text")
    assert text.status == 200 and text.text.endswith(PAUSED_TEXT)
    outputs = webhook(inprocess, app_id, "outputs")
    assert outputs.json() == {"status": "paused", "message": PAUSED_TEXT}
    dify = webhook(inprocess, app_id, "dify").json()
    if app_id == "pause-flow":
        assert dify["event"] == "workflow_paused"
    else:
        assert dify["data"]["status"] == "paused"


def test_webhook_reasoning_stays_out_of_the_text(inprocess, apps):
    assert webhook(inprocess, "think-flow", "text").text == "Forty two."


@pytest.mark.parametrize("app_id", ["future-chat", "future-wf"])
def test_webhook_ignores_unknown_events(inprocess, apps, app_id):
    assert webhook(inprocess, app_id, "text").text == "still fine"


# -- Dify 1.15.0: "user not found" -------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        (CHAT, {"query": "q"}, 502),
        (CHAT, {"query": "q", "response_mode": "streaming"}, 502),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "q"}]}, 502),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": "q"}], "stream": True},
            502,
        ),
        (
            "/extension",
            {
                "point": "app.external_data_tool.query",
                "params": {"tool_variable": "v", "query": "q"},
            },
            424,
        ),
    ],
)
def test_user_not_found_names_the_cause_and_the_fix(inprocess, workspace, path, body, status):
    workspace.user_not_found = True
    r = post(inprocess, path, body, "app-chat-0001")
    assert r.status == status
    text = r.text
    assert "user not found" in text and "1.15" in text and "upgrade Dify" in text
    assert "dify_user_not_found" in text
    assert "Traceback" not in text


def test_user_not_found_on_the_webhook(inprocess, workspace):
    workspace.user_not_found = True
    r = webhook(inprocess, "app-chat-0001", "text")
    assert r.status == 502
    assert r.json()["code"] == "dify_user_not_found"
    assert "upgrade Dify" in r.json()["message"]


def test_go_reencoding_is_what_faces_see(inprocess, workspace):
    workspace.add_app(
        App(
            "floats",
            "workflow",
            script=Script(outputs={"n": 2.0, "x": 0.25, "big": 2**60 + 1, "html": "<b>&</b>"}),
        )
    )
    body = post(inprocess, RUN, {"inputs": {}}, "floats").json()
    assert body["data"]["outputs"] == go_reencode(
        {"n": 2.0, "x": 0.25, "big": 2**60 + 1, "html": "<b>&</b>"}
    )
    assert body["data"]["outputs"]["n"] == 2 and isinstance(body["data"]["outputs"]["n"], int)
    assert body["data"]["outputs"]["big"] == 1152921504606847000  # as Go writes float64 2**60
    assert isinstance(body["data"]["elapsed_time"], float)  # 0.42 stays a float
