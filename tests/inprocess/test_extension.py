"""API-based Extension: requests exactly as Dify's requestor sends them."""

import json
import time

import pytest
from conftest import SETTINGS

from bridge.protocols import extension
from bridge.protocols.moderation import first_keyword
from devkit.workspace import App, Script

KEY = "test-key"


def dify_headers(key=KEY):
    """api_based_extension_requestor: httpx POST with JSON and a Bearer key."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "python-httpx/0.28.1",
        "Accept": "*/*",
        "Accept-Encoding": "gzip, deflate",
        "Connection": "keep-alive",
        "Traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    }
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return headers


def extension_call(inprocess, point, params, *, settings=SETTINGS, key=KEY, raw=None):
    body = raw if raw is not None else json.dumps({"point": point, "params": params}).encode()
    return inprocess.request(
        "POST", "/extension", settings=settings, headers=dify_headers(key), body=body
    )


@pytest.fixture(autouse=True)
def _fresh_flights():
    extension.FLIGHTS.__init__(ttl=300.0)


def test_ping(inprocess, workspace):
    r = extension_call(inprocess, "ping", {}, settings={"api_key": KEY})  # no app needed to save
    assert (r.status, r.json()) == (200, {"result": "pong"})
    assert workspace.invocations == []


@pytest.mark.parametrize("key", [None, "wrong", ""])
def test_bad_bearer_is_401_and_nothing_runs(inprocess, workspace, key):
    r = extension_call(
        inprocess,
        "app.external_data_tool.query",
        {"app_id": "a", "tool_variable": "w", "inputs": {}, "query": "q"},
        key=key,
    )
    assert r.status == 401
    assert r.json()["code"] == "unauthorized"
    assert workspace.invocations == [] and workspace.fetches == []


def weather_workflow(workspace):
    form = [
        {"text-input": {"variable": "city", "label": "City", "required": True}},
        {"text-input": {"variable": "query", "label": "Query", "required": False}},
    ]
    workspace.add_app(App("app-weather", "workflow", "Weather", user_input_form=form,
                          script=Script(outputs={"result": "Sunny in {inputs[city]}"})))  # fmt: skip
    return {**SETTINGS, "app": {"app_id": "app-weather"}}


def test_data_tool_with_a_workflow_app(inprocess, workspace):
    settings = weather_workflow(workspace)
    params = {
        "app_id": "caller-app",
        "tool_variable": "weather",
        "inputs": {"city": "Paris", "unknown": "x"},
        "query": "weather?",
    }
    r = extension_call(inprocess, "app.external_data_tool.query", params, settings=settings)
    assert (r.status, r.json()) == (200, {"result": "Sunny in Paris"})
    (inv,) = workspace.invocations
    assert inv.inputs == {"city": "Paris", "query": "weather?"}  # declared variables only


def test_data_tool_with_a_chat_app(inprocess, workspace):
    r = extension_call(
        inprocess,
        "app.external_data_tool.query",
        {"app_id": "x", "tool_variable": "facts", "inputs": {}, "query": "tell me"},
    )
    assert r.status == 200
    assert r.json() == {"result": "Hello from Chat. You said: tell me"}
    assert workspace.invocations[0].query == "tell me"


def test_data_tool_is_single_flighted_for_dify_retries(inprocess, workspace):
    params = {"app_id": "x", "tool_variable": "facts", "inputs": {}, "query": "same"}
    first = extension_call(inprocess, "app.external_data_tool.query", params)
    retry = extension_call(inprocess, "app.external_data_tool.query", params)
    assert first.json() == retry.json()
    assert len(workspace.invocations) == 1


def test_data_tool_failure_is_a_final_json_error(inprocess, workspace):
    settings = weather_workflow(workspace)
    params = {"app_id": "x", "tool_variable": "weather", "inputs": {}, "query": ""}
    r = extension_call(inprocess, "app.external_data_tool.query", params, settings=settings)
    assert r.status == 400
    assert r.json()["message"] == "city is required in input form"
    workspace.app("app-weather").script = Script(raise_before="read app failed: request failed: x")
    r = extension_call(
        inprocess,
        "app.external_data_tool.query",
        {**params, "inputs": {"city": "Oslo"}},
        settings=settings,
    )
    assert r.status == 424  # not a status Dify retries
    assert "Traceback" not in r.text


def test_failed_workflow_is_an_error_not_a_result(inprocess, workspace):
    settings = weather_workflow(workspace)
    workspace.app("app-weather").script = Script(
        workflow_status="failed", error_message="node exploded"
    )
    r = extension_call(
        inprocess,
        "app.external_data_tool.query",
        {"inputs": {"city": "Rome"}, "query": "q"},
        settings=settings,
    )
    assert (r.status, r.json()["code"], r.json()["message"]) == (
        400,
        "workflow_failed",
        "node exploded",
    )


MOD = {
    **SETTINGS,
    "moderation_keywords": "forbidden, Secret Plan\nbomb",
    "moderation_preset_response": "Not allowed.",
}


@pytest.mark.parametrize(
    ("params", "flagged"),
    [
        ({"app_id": "a", "inputs": {"topic": "the SECRET PLAN"}, "query": "hello"}, True),
        ({"app_id": "a", "inputs": {}, "query": "how to build a Bomb"}, True),
        ({"inputs": {"k": "fine"}, "query": "all good"}, False),  # app_id is optional
    ],
)
def test_input_moderation_keywords(inprocess, workspace, params, flagged):
    r = extension_call(inprocess, "app.moderation.input", params, settings=MOD)
    assert r.status == 200
    body = r.json()
    assert body["flagged"] is flagged
    assert body["action"] == "direct_output"
    if flagged:
        assert body["preset_response"] == "Not allowed."
    assert workspace.invocations == []


@pytest.mark.parametrize(
    ("text", "flagged"), [("this is FORBIDDEN", True), ("this is fine", False)]
)
def test_output_moderation_keywords(inprocess, text, flagged):
    r = extension_call(
        inprocess, "app.moderation.output", {"app_id": "a", "text": text}, settings=MOD
    )
    assert r.json()["flagged"] is flagged
    assert r.json()["action"] == "direct_output"


def judge(workspace, outputs):
    form = [{"text-input": {"variable": v, "label": v}} for v in ("point", "text", "inputs")]
    workspace.add_app(
        App("app-judge", "workflow", "Judge", user_input_form=form, script=Script(outputs=outputs))
    )
    return {**SETTINGS, "app": {"app_id": "app-judge"}, "moderation_mode": "app"}


def test_app_judge_flags_with_its_own_preset(inprocess, workspace):
    settings = judge(workspace, {"flagged": "true", "preset_response": "The judge says no."})
    r = extension_call(inprocess, "app.moderation.output", {"text": "anything"}, settings=settings)
    assert r.json() == {
        "flagged": True,
        "action": "direct_output",
        "preset_response": "The judge says no.",
    }
    (inv,) = workspace.invocations
    assert inv.inputs == {"point": "output", "text": "anything", "inputs": "{}"}


def test_app_judge_overrides(inprocess, workspace):
    settings = judge(workspace, {"flagged": True, "text": "[cleaned]", "query": "[clean query]"})
    out = extension_call(
        inprocess, "app.moderation.output", {"text": "dirty"}, settings=settings
    ).json()
    assert out == {
        "flagged": True,
        "action": "overridden",
        "preset_response": "Your content violates our usage policy.",
        "text": "[cleaned]",
    }
    inp = extension_call(
        inprocess, "app.moderation.input", {"inputs": {}, "query": "dirty"}, settings=settings
    ).json()
    assert inp["action"] == "overridden" and inp["query"] == "[clean query]" and "text" not in inp


def test_app_judge_not_flagged(inprocess, workspace):
    settings = judge(workspace, {"flagged": "false"})
    r = extension_call(
        inprocess, "app.moderation.input", {"inputs": {}, "query": "fine"}, settings=settings
    )
    assert r.json() == {"flagged": False, "action": "direct_output", "preset_response": ""}


def test_chat_app_as_judge_answers_in_text(inprocess, workspace):
    workspace.app("app-chat-0001").script = Script(answer="FLAGGED: insults")
    settings = {**SETTINGS, "moderation_mode": "app"}
    r = extension_call(
        inprocess, "app.moderation.input", {"inputs": {}, "query": "you fool"}, settings=settings
    )
    assert r.json()["flagged"] is True
    assert workspace.invocations[0].query == "you fool"


def test_keywords_and_app_asks_the_app_only_when_keywords_pass(inprocess, workspace):
    settings = {
        **judge(workspace, {"flagged": "true"}),
        "moderation_mode": "keywords_and_app",
        "moderation_keywords": "bomb",
    }
    assert extension_call(
        inprocess, "app.moderation.output", {"text": "a bomb"}, settings=settings
    ).json()["flagged"]
    assert workspace.invocations == []
    assert extension_call(
        inprocess, "app.moderation.output", {"text": "subtle"}, settings=settings
    ).json()["flagged"]
    assert len(workspace.invocations) == 1


def test_unknown_point_names_it(inprocess):
    r = extension_call(inprocess, "app.something.else", {})
    assert r.status == 400
    assert "'app.something.else'" in r.json()["message"]
    assert r.json()["code"] == "invalid_param"


@pytest.mark.parametrize(
    "raw", [b"{broken", b'{"params": {}}', b'{"point": "ping", "params": []}', b"[]"]
)
def test_malformed_bodies(inprocess, raw):
    r = extension_call(inprocess, None, None, raw=raw)
    assert r.status == 400
    assert set(r.json()) == {"code", "message", "status"}


def test_keyword_moderation_of_4kb_costs_microseconds():
    """Not a benchmark (see devkit/bench.py): a guard that no per-call compile creeps in."""
    keywords = tuple(f"word{i}" for i in range(50))
    text = ("lorem ipsum dolor sit amet " * 160)[:4096]
    first_keyword(keywords, [text])
    start = time.perf_counter()
    for _ in range(200):
        first_keyword(keywords, [text])
    assert (time.perf_counter() - start) / 200 < 0.002
