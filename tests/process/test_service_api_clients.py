"""Real Dify clients against the local runner: dify-client, httpx-sse, raw HTTP timing."""

import itertools
import json
import time

import httpx
import pytest
from dify_client import ChatClient, CompletionClient
from httpx_sse import connect_sse

from devkit.daemon import PluginProcess
from devkit.runner import Bridge, running
from devkit.wire import daemon_request_bytes
from devkit.workspace import App, Script, Workspace

KEY = "demo-key"
HEADERS = {"Authorization": f"Bearer {KEY}"}


def base(runner, hook):
    return f"{runner[0]}/e/{hook}/v1"


def chat_client(runner, hook):
    client = ChatClient(KEY)
    client.base_url = base(runner, hook)
    return client


@pytest.mark.parametrize(
    ("hook", "mode"),
    [
        ("demochat00000001", "chat"),
        ("demoagent0000001", "agent-chat"),
        ("demoflow00000001", "advanced-chat"),
    ],
)
def test_dify_client_chat_blocking(runner, hook, mode):
    r = chat_client(runner, hook).create_chat_message(inputs={}, query="ping?", user="alice")
    assert r.status_code == 200, r.text
    body = r.json()
    assert list(body) == [
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
    assert body["mode"] == mode
    assert "ping?" in body["answer"]


def test_dify_client_continues_a_conversation_and_keeps_others_out(runner):
    client = chat_client(runner, "demochat00000001")
    first = client.create_chat_message(inputs={"name": "Ada"}, query="one", user="alice").json()
    second = client.create_chat_message(
        inputs={}, query="two", user="alice", conversation_id=first["conversation_id"]
    )
    assert second.status_code == 200
    assert second.json()["conversation_id"] == first["conversation_id"]
    intruder = client.create_chat_message(
        inputs={}, query="x", user="bob", conversation_id=first["conversation_id"]
    )
    assert intruder.status_code == 404
    assert intruder.json() == {
        "code": "not_found",
        "message": "Conversation Not Exists.",
        "status": 404,
    }


def test_dify_client_chat_streaming(runner):
    r = chat_client(runner, "demochat00000001").create_chat_message(
        inputs={}, query="stream me", user="alice", response_mode="streaming"
    )
    assert r.headers["content-type"] == "text/event-stream; charset=utf-8"
    events = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith(b"data: ")]
    assert events[-1]["event"] == "message_end"
    assert "".join(e.get("answer", "") for e in events).endswith("You said: stream me")


def test_dify_client_completion(runner):
    client = CompletionClient(KEY)
    client.base_url = base(runner, "democompletion01")
    r = client.create_completion_message(
        inputs={"query": "long text"}, response_mode="blocking", user="u"
    )
    assert r.status_code == 200
    assert r.json()["answer"] == "Summary: long text"
    missing = client.create_completion_message(inputs={}, response_mode="blocking", user="u")
    assert (missing.status_code, missing.json()["message"]) == (
        400,
        "query is required in input form",
    )


def test_dify_client_parameters(runner):
    r = chat_client(runner, "demoworkflow0001").get_application_parameters(user="u")
    assert r.status_code == 200
    assert [next(iter(item.values()))["variable"] for item in r.json()["user_input_form"]] == [
        "city",
        "query",
    ]


def test_workflow_run_blocking_and_httpx_sse_streaming(runner):
    url = f"{base(runner, 'demoworkflow0001')}/workflows/run"
    r = httpx.post(url, json={"inputs": {"city": "Lyon"}, "user": "u"}, headers=HEADERS, timeout=10)
    assert r.json()["data"]["outputs"] == {"result": "Sunny in Lyon, 21 °C"}
    with (
        httpx.Client(timeout=10) as client,
        connect_sse(
            client,
            "POST",
            url,
            json={"inputs": {"city": "Lyon"}, "response_mode": "streaming"},
            headers=HEADERS,
        ) as source,
    ):
        events = [(sse.event, json.loads(sse.data)) for sse in source.iter_sse()]
    assert {name for name, _ in events} == {"message"}  # SSE default event name: only data frames
    names = [data["event"] for _, data in events]
    assert names[0] == "workflow_started" and names[-1] == "workflow_finished"
    assert (
        "".join(d["data"]["text"] for _, d in events if d["event"] == "text_chunk")
        == "Sunny in Lyon, 21 °C"
    )


def test_wrong_key_is_401_over_http(runner):
    r = chat_client(runner, "demochat00000001")
    r.api_key = "wrong"
    response = r.create_chat_message(inputs={}, query="hi", user="u")
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"


@pytest.fixture
def slow_runner(tmp_path):
    config = tmp_path / "slow.yaml"
    config.write_text(
        "apps:\n"
        "  - {id: slow, mode: chat, name: Slow, script: {chunks: [a, b, c, d], delay: 0.3}}\n"
        "endpoints:\n"
        "  - {hook_id: slow000000000001, endpoint_id: ep-slow, settings: {api_key: k, app: {app_id: slow}}}\n"
    )
    with running(Bridge(config)) as base:
        yield f"{base}/e/slow000000000001/v1"


def test_events_arrive_separately_in_time(slow_runner):
    arrivals = []
    body = {"query": "q", "response_mode": "streaming"}
    with httpx.stream(
        "POST",
        f"{slow_runner}/chat-messages",
        json=body,
        headers={"Authorization": "Bearer k"},
        timeout=10,
    ) as r:
        for line in r.iter_lines():
            if line.startswith("data: "):
                arrivals.append((time.monotonic(), json.loads(line[6:])["event"]))
    assert [name for _, name in arrivals] == ["message"] * 4 + ["message_end"]
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(arrivals)]
    assert all(gap > 0.2 for gap in gaps), gaps  # forwarded as produced, not buffered


def test_pings_fill_silences_without_blocking_other_requests():
    workspace = Workspace([App("late", "chat", script=Script(chunks=["x"], first_delay=1.2))])
    with PluginProcess(workspace, env={"APP_BRIDGE_PING_INTERVAL": "0.25"}) as process:
        settings = {"api_key": "k", "app": {"app_id": "late"}}
        raw = daemon_request_bytes(
            "POST", "/v1/chat-messages",
            headers={"Authorization": "Bearer k", "Content-Type": "application/json"},
            body=json.dumps({"query": "q", "response_mode": "streaming"}).encode(),
        )  # fmt: skip
        started = time.monotonic()
        reply = process.send(raw, settings)
        first_chunk = next(reply.chunks)
        assert first_chunk == b"event: ping\n\n"
        assert time.monotonic() - started < 0.8
        # while this stream waits, another request is served promptly
        other_started = time.monotonic()
        other = process.request(daemon_request_bytes("GET", "/"), settings)
        assert other.status == 200 and time.monotonic() - other_started < 0.5
        rest = list(reply.chunks)
    frames = [first_chunk, *rest]
    first_data = next(i for i, f in enumerate(frames) if f.startswith(b"data: "))
    assert first_data >= 3 and all(f == b"event: ping\n\n" for f in frames[:first_data])
    assert json.loads(frames[-1][6:])["event"] == "message_end"
