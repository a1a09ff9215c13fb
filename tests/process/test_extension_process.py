"""API-based Extension through the real plugin process, requests as Dify sends them."""

import json

import pytest

from devkit.wire import daemon_request_bytes
from devkit.workspace import App, Script

KEY = "ext-key-0001"


def dify_extension_request(point, params, key=KEY):
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "python-httpx/0.28.1",
        "Accept": "*/*",
    }
    if key:
        headers["Authorization"] = f"Bearer {key}"
    body = json.dumps({"point": point, "params": params}).encode()
    return daemon_request_bytes("POST", "/extension", headers=headers, body=body)


@pytest.fixture
def ext(plugin_process, workspace):
    form = [{"text-input": {"variable": "city", "label": "City", "required": True}}]
    workspace.add_app(
        App(
            "ext-weather",
            "workflow",
            user_input_form=form,
            script=Script(outputs={"forecast": "Rain in {inputs[city]}"}),
        )
    )
    settings = {"api_key": KEY, "app": {"app_id": "ext-weather"}, "moderation_keywords": "darn"}

    def send(point, params, key=KEY, **overrides):
        return plugin_process.request(
            dify_extension_request(point, params, key), {**settings, **overrides}
        )

    return send


def test_ping_and_auth(ext, workspace):
    assert ext("ping", {}).json() == {"result": "pong"}
    r = ext("app.external_data_tool.query", {"inputs": {"city": "x"}, "query": "q"}, key="bad")
    assert r.status == 401 and r.json()["code"] == "unauthorized"
    assert workspace.invocations == []


def test_data_tool_workflow_and_chat(ext, workspace):
    r = ext(
        "app.external_data_tool.query",
        {"app_id": "a", "tool_variable": "weather", "inputs": {"city": "Bergen"}, "query": "?"},
    )
    assert (r.status, r.json()) == (200, {"result": "Rain in Bergen"})
    r = ext(
        "app.external_data_tool.query",
        {"app_id": "a", "tool_variable": "w", "inputs": {}, "query": "hi"},
        app={"app_id": "app-chat-0001"},
    )
    assert r.json() == {"result": "Hello from Chat. You said: hi"}


def test_moderation_both_points(ext):
    flagged = ext("app.moderation.input", {"app_id": "a", "inputs": {}, "query": "DARN it"}).json()
    assert (
        flagged["flagged"] is True
        and flagged["action"] == "direct_output"
        and flagged["preset_response"]
    )
    clean = ext("app.moderation.output", {"app_id": "a", "text": "lovely"}).json()
    assert clean == {"flagged": False, "action": "direct_output", "preset_response": ""}


def test_unknown_point_and_malformed_body(ext, plugin_process):
    r = ext("app.nope", {})
    assert r.status == 400 and "app.nope" in r.json()["message"]
    raw = daemon_request_bytes(
        "POST",
        "/extension",
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
        body=b"{oops",
    )
    r = plugin_process.request(raw, {"api_key": KEY})
    assert (r.status, r.json()["code"]) == (400, "invalid_param")


@pytest.mark.parametrize(
    ("mode", "judge_flags", "text", "flagged", "runs"),
    [
        ("app", "true", "anything", True, 1),
        ("app", "false", "anything", False, 1),
        ("keywords_and_app", "false", "oh DARN", True, 0),  # keyword hit: the app is not asked
        ("keywords_and_app", "true", "subtle", True, 1),
        ("keywords_and_app", "false", "fine", False, 1),
    ],
)
@pytest.mark.parametrize("point", ["app.moderation.input", "app.moderation.output"])
def test_moderation_modes_over_stdio(ext, workspace, mode, judge_flags, text, flagged, runs, point):
    text = (
        f"{text} [{mode}/{judge_flags}]"  # distinct requests: identical ones share a memoised run
    )
    form = [{"text-input": {"variable": v, "label": v}} for v in ("point", "text")]
    workspace.add_app(
        App(
            "ext-judge",
            "workflow",
            user_input_form=form,
            script=Script(outputs={"flagged": judge_flags}),
        )
    )
    params = (
        {"app_id": "a", "inputs": {}, "query": text}
        if point.endswith("input")
        else {"app_id": "a", "text": text}
    )
    r = ext(
        point,
        params,
        app={"app_id": "ext-judge"},
        moderation_mode=mode,
        moderation_preset_response="Blocked.",
    )
    body = r.json()
    assert (r.status, body["flagged"], body["action"]) == (200, flagged, "direct_output")
    assert body["preset_response"] == ("Blocked." if flagged else "")
    assert len(workspace.invocations) == runs
    if runs:
        assert workspace.invocations[0].inputs == {"point": point.rsplit(".", 1)[-1], "text": text}
