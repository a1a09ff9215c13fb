"""Service-API facade through the SDK's executor, with daemon-exact requests."""

import json

import pytest
from conftest import CHAT_APP, SETTINGS

from devkit.workspace import App, Script, dify_frame, inner_api_error

JSON = {"Content-Type": "application/json"}
AUTH = {"Authorization": "Bearer test-key", **JSON}


def settings_for(app_id):
    return {**SETTINGS, "app": {"app_id": app_id}}


def post(inprocess, path, body, *, app_id=CHAT_APP, headers=AUTH, raw=None):
    data = raw if raw is not None else json.dumps(body).encode()
    return inprocess.request(
        "POST", path, settings=settings_for(app_id), headers=headers, body=data
    )


def sse_events(response):
    events = []
    for frame in response.text.split("\n\n"):
        if frame.startswith("data: "):
            events.append(json.loads(frame[len("data: ") :]))
        elif frame:
            events.append(frame)
    return events


CHAT_KEYS = [
    "event",
    "task_id",
    "id",
    "message_id",
    "conversation_id",
    "mode",
    "answer",
    "metadata",
    "created_at",
]


@pytest.mark.parametrize("app_id", [CHAT_APP, "app-agent-0001", "app-flow-0001"])
def test_chat_blocking_has_difys_exact_shape(inprocess, app_id, workspace):
    r = post(
        inprocess, "/v1/chat-messages", {"query": "hi", "inputs": {}, "user": "u1"}, app_id=app_id
    )
    assert r.status == 200
    assert r.header("Content-Type") == "application/json; charset=utf-8"  # Dify's, for runs
    body = r.json()
    assert list(body) == CHAT_KEYS
    assert body["mode"] == workspace.app(app_id).mode
    assert body["answer"].endswith("You said: hi")
    assert body["metadata"]["usage"]["total_tokens"] == 20
    (inv,) = workspace.invocations
    assert inv.response_mode == "streaming"  # always streamed, aggregated for blocking callers


def test_completion_and_workflow_blocking_shapes(inprocess):
    r = post(
        inprocess,
        "/v1/completion-messages",
        {"inputs": {}, "user": "u"},
        app_id="app-completion-0001",
    )
    assert list(r.json()) == [
        "event",
        "task_id",
        "id",
        "message_id",
        "mode",
        "answer",
        "metadata",
        "created_at",
    ]
    r = post(
        inprocess, "/v1/workflows/run", {"inputs": {}, "user": "u"}, app_id="app-workflow-0001"
    )
    body = r.json()
    assert list(body) == ["task_id", "workflow_run_id", "data"]
    assert body["data"]["status"] == "succeeded"


def test_streaming_forwards_every_event_unchanged(inprocess, workspace):
    r = post(
        inprocess, "/v1/chat-messages", {"query": "a b", "inputs": {}, "response_mode": "streaming"}
    )
    assert r.status == 200
    assert r.header("Content-Type") == "text/event-stream; charset=utf-8"
    assert r.header("Cache-Control") == "no-cache"
    assert r.header("X-Accel-Buffering") == "no"
    assert r.header("Content-Length") is None
    events = sse_events(r)
    assert [e["event"] for e in events][-1] == "message_end"
    assert len(r.chunks) == len(events)  # one chunk per event
    assert all(chunk.startswith(b"data: {") and chunk.endswith(b"}\n\n") for chunk in r.chunks)


def test_workflow_streaming_event_order(inprocess):
    r = post(
        inprocess,
        "/v1/workflows/run",
        {"inputs": {}, "response_mode": "streaming"},
        app_id="app-workflow-0001",
    )
    names = [e["event"] for e in sse_events(r)]
    assert names[0] == "workflow_started" and names[-1] == "workflow_finished"
    assert "text_chunk" in names


@pytest.mark.parametrize(
    "headers",
    [
        JSON,
        {"Authorization": "Bearer wrong", **JSON},
        {"X-API-Key": "nope", **JSON},
        {"Authorization": "test-key", **JSON},
    ],
)
def test_bad_auth_is_401_and_nothing_runs(inprocess, workspace, headers):
    r = post(inprocess, "/v1/chat-messages", {"query": "hi"}, headers=headers)
    assert r.status == 401
    assert set(r.json()) == {"code", "message", "status"}
    assert r.json()["code"] == "unauthorized"
    assert workspace.invocations == [] and workspace.fetches == []


def test_x_api_key_is_accepted(inprocess):
    r = post(
        inprocess, "/v1/chat-messages", {"query": "hi"}, headers={"X-API-Key": "test-key", **JSON}
    )
    assert r.status == 200


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (b"", 400, "JSON object"),
        (json.dumps({"inputs": {}}).encode(), 400, "query is required"),
        (json.dumps({"query": "  "}).encode(), 400, "query is required"),
        (json.dumps({"query": 5}).encode(), 400, "query must be a string"),
        (json.dumps({"query": "q", "inputs": []}).encode(), 400, "inputs must be an object"),
        (json.dumps({"query": "q", "response_mode": "fast"}).encode(), 400, "response_mode"),
        (json.dumps({"query": "q", "user": 7}).encode(), 400, "user must be a string"),
        (json.dumps({"query": "q", "conversation_id": "nope"}).encode(), 400, "not a valid uuid"),
        (json.dumps({"query": "q", "files": [{"type": "image"}]}).encode(), 400, "files"),
    ],
)
def test_request_validation(inprocess, workspace, body, status, fragment):
    r = post(inprocess, "/v1/chat-messages", None, raw=body)
    assert r.status == status
    assert r.json()["code"] == "invalid_param"
    assert fragment in r.json()["message"]
    assert workspace.invocations == []


def test_wrong_content_type_is_415(inprocess):
    r = post(
        inprocess,
        "/v1/chat-messages",
        None,
        raw=b"query=hi",
        headers={
            "Authorization": "Bearer test-key",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert r.status == 415
    assert r.json()["code"] == "unsupported_media_type"


def test_body_cut_by_the_daemon_is_413(inprocess):
    big = b'{"query": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    r = post(inprocess, "/v1/chat-messages", None, raw=big)
    assert r.status == 413


def test_null_files_from_dify_client_are_fine(inprocess):
    r = post(
        inprocess,
        "/v1/chat-messages",
        {"query": "hi", "inputs": {}, "user": "u", "files": None, "response_mode": "blocking"},
    )
    assert r.status == 200


def test_required_inputs_are_checked_before_running(inprocess, workspace):
    workspace.add_app(
        App(
            "app-form-0001",
            "workflow",
            user_input_form=[
                {"text-input": {"variable": "city", "label": "City", "required": True}}
            ],
        )
    )
    r = post(inprocess, "/v1/workflows/run", {"inputs": {}}, app_id="app-form-0001")
    assert (r.status, r.json()["message"]) == (400, "city is required in input form")
    assert workspace.invocations == []
    r = post(inprocess, "/v1/workflows/run", {"inputs": {"city": "Oslo"}}, app_id="app-form-0001")
    assert r.status == 200


@pytest.mark.parametrize(
    ("path", "app_id", "code"),
    [
        ("/v1/chat-messages", "app-workflow-0001", "not_chat_app"),
        ("/v1/chat-messages", "app-completion-0001", "not_chat_app"),
        ("/v1/workflows/run", CHAT_APP, "not_workflow_app"),
        ("/v1/workflows/run", "app-completion-0001", "not_workflow_app"),
        ("/v1/completion-messages", CHAT_APP, "app_unavailable"),
        ("/v1/completion-messages", "app-workflow-0001", "app_unavailable"),
    ],
)
@pytest.mark.parametrize("mode", ["blocking", "streaming"])
def test_route_mode_mismatch_is_learned_then_refused_before_running(
    inprocess, workspace, path, app_id, code, mode
):
    body = {"query": "hi", "inputs": {}, "response_mode": mode}
    first = post(inprocess, path, body, app_id=app_id)
    assert (first.status, first.json()["code"]) == (400, code)
    runs = len(workspace.invocations)
    second = post(inprocess, path, body, app_id=app_id)
    assert (second.status, second.json()["code"]) == (400, code)
    assert len(workspace.invocations) == runs  # refused from memory, nothing ran


def test_failure_before_the_stream_is_a_json_error_with_difys_code(inprocess, workspace):
    workspace.app(CHAT_APP).script = Script(
        raise_before=inner_api_error("Your quota is used up", code="provider_quota_exceeded")
    )
    for mode in ("blocking", "streaming"):
        r = post(inprocess, "/v1/chat-messages", {"query": "hi", "response_mode": mode})
        assert r.status == 400
        assert r.header("Content-Type") == "application/json"
        assert r.json() == {
            "code": "provider_quota_exceeded",
            "message": "Your quota is used up",
            "status": 400,
        }


def test_error_event_mid_stream_ends_the_stream_with_an_error_event(inprocess, workspace):
    workspace.app(CHAT_APP).script = Script(answer="one two three", error_after=2)
    r = post(inprocess, "/v1/chat-messages", {"query": "hi", "response_mode": "streaming"})
    assert r.status == 200
    events = sse_events(r)
    assert [e["event"] for e in events] == ["message", "message", "error"]
    assert events[-1]["code"] == "completion_request_error"
    assert events[-1]["conversation_id"] == events[0]["conversation_id"]


def test_error_event_in_blocking_mode_is_an_http_error(inprocess, workspace):
    workspace.app(CHAT_APP).script = Script(answer="one two three", error_after=2)
    r = post(inprocess, "/v1/chat-messages", {"query": "hi"})
    assert (r.status, r.json()["code"]) == (400, "completion_request_error")


def test_no_traceback_or_exception_text_in_any_body(inprocess, workspace):
    workspace.app(CHAT_APP).script = Script(
        raise_before="read app failed: request failed: secret-token=abc"
    )
    for mode in ("blocking", "streaming"):
        r = post(inprocess, "/v1/chat-messages", {"query": "hi", "response_mode": mode})
        assert r.status == 500
        assert "secret-token" not in r.text and "Traceback" not in r.text


def test_unset_app_setting_names_the_setting(inprocess):
    r = inprocess.request(
        "POST",
        "/v1/chat-messages",
        settings={"api_key": "test-key"},
        headers=AUTH,
        body=b'{"query":"q"}',
    )
    assert r.status == 503
    assert r.json()["code"] == "invalid_setting" and "'app'" in r.json()["message"]


def test_parameters_route(inprocess, workspace):
    r = inprocess.request("GET", "/v1/parameters", settings=SETTINGS, headers=AUTH)
    assert r.status == 200
    assert r.json() == workspace.app(CHAT_APP).parameters()
    assert inprocess.request("GET", "/v1/parameters", settings=SETTINGS).status == 401


# -- conversation ownership ----------------------------------------------------------------


def chat(inprocess, user, conversation_id=None, mode="blocking"):
    body = {"query": "hi", "inputs": {}, "user": user, "response_mode": mode}
    if conversation_id:
        body["conversation_id"] = conversation_id
    return post(inprocess, "/v1/chat-messages", body)


def test_owner_continues_and_others_cannot(inprocess, workspace):
    conversation = chat(inprocess, "alice").json()["conversation_id"]
    again = chat(inprocess, "alice", conversation)
    assert again.status == 200 and again.json()["conversation_id"] == conversation
    runs = len(workspace.invocations)
    stolen = chat(inprocess, "bob", conversation)
    assert stolen.status == 404
    assert stolen.json() == {
        "code": "not_found",
        "message": "Conversation Not Exists.",
        "status": 404,
    }
    assert len(workspace.invocations) == runs
    assert workspace.invocations[-1].conversation_id == conversation


def test_streamed_conversations_are_owned_too(inprocess):
    r = chat(inprocess, "alice", mode="streaming")
    conversation = sse_events(r)[0]["conversation_id"]
    assert chat(inprocess, "alice", conversation).status == 200
    assert chat(inprocess, "mallory", conversation, mode="streaming").status == 404


def test_unknown_conversation_is_404_without_running(inprocess, workspace):
    r = chat(inprocess, "alice", "0b8f6b1e-34a4-4b1c-9a53-6d1c9ef0c1aa")
    assert r.status == 404
    assert workspace.invocations == []


def test_conversation_gone_in_dify_clears_the_record(inprocess, workspace):
    conversation = chat(inprocess, "alice").json()["conversation_id"]
    workspace.forget_conversation(conversation)
    r = chat(inprocess, "alice", conversation)
    assert (r.status, r.json()["message"]) == (404, "Conversation Not Exists.")
    runs = len(workspace.invocations)
    assert (
        chat(inprocess, "alice", conversation).status == 404
    )  # record gone: refused before running
    assert len(workspace.invocations) == runs


def test_ownership_records_are_namespaced_and_hold_no_user_id(inprocess, workspace):
    chat(inprocess, "alice@example.com")
    (key,) = workspace.storage.data
    assert key.startswith("ab/endpoint-inprocess/conv/")
    assert b"alice" not in workspace.storage.data[key]


# -- regressions from review -----------------------------------------------------------------


def test_follow_up_turns_do_not_resend_required_inputs(inprocess, workspace):
    """Dify keeps a conversation's first inputs; real clients send inputs: {} later."""
    workspace.add_app(
        App(
            "app-named",
            "advanced-chat",
            user_input_form=[{"text-input": {"variable": "name", "label": "N", "required": True}}],
        )
    )
    first = post(
        inprocess,
        "/v1/chat-messages",
        {"query": "hi", "inputs": {"name": "Ada"}, "user": "u"},
        app_id="app-named",
    )
    assert first.status == 200
    second = post(inprocess, "/v1/chat-messages", {"query": "again", "inputs": {}, "user": "u",
                                                   "conversation_id": first.json()["conversation_id"]}, app_id="app-named")  # fmt: skip
    assert second.status == 200, second.text


def test_dify_outage_is_not_conversation_not_exists(inprocess, workspace):
    conversation = chat(inprocess, "alice").json()["conversation_id"]
    workspace.app(CHAT_APP).script = Script(
        raise_before="invoke app failed: request failed with status code: 502 and respond with: <html>Bad Gateway</html>"
    )
    r = chat(inprocess, "alice", conversation)
    assert (r.status, r.json()["code"]) == (502, "app_unavailable")
    workspace.app(CHAT_APP).script = Script()
    assert chat(inprocess, "alice", conversation).status == 200  # the ownership record survived


def test_memory_is_scoped_per_endpoint(inprocess, workspace):
    """One plugin process serves many workspaces: no answer from another endpoint's memory."""
    settings = settings_for("app-workflow-0001")
    inprocess.request(
        "GET", "/v1/parameters", settings=settings, headers=AUTH, endpoint_id="endpoint-a"
    )
    inprocess.request(
        "POST",
        "/v1/chat-messages",
        settings=settings,
        headers=AUTH,
        body=b'{"query": "q"}',
        endpoint_id="endpoint-a",
    )
    assert workspace.fetches == ["app-workflow-0001"]
    inprocess.request(
        "GET", "/v1/parameters", settings=settings, headers=AUTH, endpoint_id="endpoint-b"
    )
    assert workspace.fetches == ["app-workflow-0001", "app-workflow-0001"]  # fetched again for B
    runs = len(workspace.invocations)
    inprocess.request(
        "POST",
        "/v1/chat-messages",
        settings=settings,
        headers=AUTH,
        body=b'{"query": "q"}',
        endpoint_id="endpoint-b",
    )
    assert len(workspace.invocations) == runs + 1  # B learns the mode itself


def test_stream_frames_are_exactly_the_apps_events(inprocess, workspace):
    r = post(
        inprocess,
        "/v1/chat-messages",
        {"query": "x y z", "response_mode": "streaming"},
        app_id="app-flow-0001",
    )
    (delivered,) = workspace.emitted
    (sent,) = workspace.sent  # as Dify built them, before the daemon sorted their keys
    assert sse_events(r) == delivered  # same dicts, same order, nothing added or dropped
    assert r.text == "".join(dify_frame(e) for e in sent)  # Dify's bytes, Dify's key order


@pytest.mark.parametrize(
    ("app_id", "path", "envelope"),
    [
        (CHAT_APP, "/v1/chat-messages", ["event", "conversation_id", "message_id", "created_at"]),
        (
            "app-flow-0001",
            "/v1/chat-messages",
            ["event", "conversation_id", "message_id", "created_at"],
        ),
        ("app-completion-0001", "/v1/completion-messages", ["event", "message_id", "created_at"]),
        ("app-workflow-0001", "/v1/workflows/run", ["event", "workflow_run_id"]),
    ],
)
def test_failure_mid_stream_becomes_a_dify_error_event(
    inprocess, workspace, app_id, path, envelope
):
    workspace.app(app_id).script = Script(answer="a b c d e", fail_after=3)
    r = post(
        inprocess, path, {"query": "q", "inputs": {}, "response_mode": "streaming"}, app_id=app_id
    )
    events = sse_events(r)
    assert len(events) == 4
    last = events[-1]
    assert list(last) == [*envelope, "code", "message", "status"]
    assert (last["code"], last["status"]) == ("internal_server_error", 500)
    assert "upstream" not in r.text and "Traceback" not in r.text


def test_deeply_nested_json_is_400(inprocess):
    r = post(inprocess, "/v1/chat-messages", None, raw=b"[" * 100_000)
    assert r.status == 400


def test_agent_opening_with_a_message_is_still_agent_chat(inprocess, workspace):
    from bridge.app.aggregate import aggregate

    events = [
        {
            "event": "message",
            "conversation_id": "c",
            "message_id": "m",
            "created_at": 1,
            "task_id": "t",
            "id": "m",
            "answer": "cached ",
        },
        {
            "event": "agent_message",
            "conversation_id": "c",
            "message_id": "m",
            "created_at": 1,
            "task_id": "t",
            "id": "m",
            "answer": "reply",
        },
    ]
    assert aggregate(events)["mode"] == "agent-chat"
