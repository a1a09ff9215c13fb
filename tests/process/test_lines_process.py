"""Issue 10 H1/H2 through the real plugin process behind the daemon emulator.

- No stdout line nears the daemon's 5 MiB limit: a workflow handling a 3 MB document
  streams (each event split into chunks of at most 256 KiB) and answers blocking; a 6 MB
  query is refused with 413 before the app is invoked, on every route that runs an app.
- Requests the SDK's parser refuses are a 400 JSON error, never its traceback.
In each case the process survives and a second endpoint answers afterwards.
"""

import json
import time

import pytest
from conftest import SETTINGS

from bridge.transport.lines import MAX_CHUNK
from devkit.daemon import MAX_LINE, PluginProcess
from devkit.wire import daemon_request_bytes
from devkit.workspace import App, Script, Workspace

KEY = SETTINGS["api_key"]
DOC = ('A long contract clause, é, "quoted", with a newline\n' * 60_000)[:3_000_000]
BIG = "q" * 6_000_000
FORM = [{"paragraph": {"variable": "document", "label": "Document", "required": True}}]


def post(path, body, **headers):
    return daemon_request_bytes(
        "POST",
        path,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {KEY}", **headers},
        body=json.dumps(body).encode(),
    )


def sse_events(body: bytes) -> list[dict]:
    frames = [f for f in body.split(b"\n\n") if f.startswith(b"data: ")]
    return [json.loads(f[len(b"data: ") :]) for f in frames]


def assert_alive_and_serving(plugin_process):
    """The process is up, and another endpoint (other id, other settings) answers."""
    assert plugin_process.running
    other = {"api_key": "second-key", "app": {"app_id": "app-chat-0001"}}
    raw = daemon_request_bytes(
        "POST",
        "/v1/chat-messages",
        headers={"Content-Type": "application/json", "Authorization": "Bearer second-key"},
        body=b'{"query": "still there?", "user": "u2"}',
    )
    r = plugin_process.request(raw, other, endpoint_id="endpoint-second")
    assert r.status == 200, r.text
    assert r.json()["answer"].endswith("You said: still there?")


@pytest.fixture
def doc_flow(workspace):
    echo = Script(outputs={"summary": "{inputs[document]}"})
    workspace.add_app(App("doc-flow", "workflow", "Docs", user_input_form=FORM, script=echo))
    return {**SETTINGS, "app": {"app_id": "doc-flow"}}


def test_a_3_mb_document_streams_through_a_workflow(plugin_process, workspace, doc_flow):
    raw = post("/v1/workflows/run", {"inputs": {"document": DOC}, "response_mode": "streaming"})
    reply = plugin_process.send(raw, doc_flow)
    assert reply.status == 200
    chunks = list(reply.chunks)
    assert max(map(len, chunks)) <= MAX_CHUNK  # the 3 MB events left in 256 KiB pieces
    events = sse_events(b"".join(chunks))
    assert events[0]["event"] == "workflow_started"
    assert events[0]["data"]["inputs"] == {"document": DOC}  # echoed whole, frames intact
    assert events[-1]["event"] == "workflow_finished"
    assert events[-1]["data"]["outputs"] == {"summary": DOC}
    (run,) = workspace.invocations
    assert run.inputs == {"document": DOC}
    assert plugin_process.longest_line < MAX_LINE
    assert_alive_and_serving(plugin_process)


def test_a_3_mb_document_answers_blocking(plugin_process, workspace, doc_flow):
    raw = post("/v1/workflows/run", {"inputs": {"document": DOC}, "user": "u1"})
    reply = plugin_process.send(raw, doc_flow)
    chunks = list(reply.chunks)
    assert reply.status == 200 and len(chunks) > 1 and max(map(len, chunks)) <= MAX_CHUNK
    body = b"".join(chunks)
    assert int(reply.headers["Content-Length"]) == len(body)
    assert json.loads(body)["data"]["outputs"] == {"summary": DOC}


OPENAI_BIG = {"model": "m", "messages": [{"role": "user", "content": BIG}]}
TOO_LARGE = [
    ("/v1/chat-messages", {"query": BIG, "response_mode": "streaming"}, "app-chat-0001"),
    ("/v1/chat-messages", {"query": BIG}, "app-chat-0001"),
    ("/v1/completion-messages", {"inputs": {"query": BIG}}, "app-completion-0001"),
    ("/v1/workflows/run", {"inputs": {"document": BIG}}, "doc-flow"),
    ("/v1/chat/completions", OPENAI_BIG, "app-chat-0001"),
    ("/v1/chat/completions", {**OPENAI_BIG, "stream": True}, "app-chat-0001"),
    ("/extension", {"point": "app.external_data_tool.query", "params": {"query": BIG}},
     "app-chat-0001"),
    ("/webhook", {"message": BIG}, "app-chat-0001"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "body", "app_id"), TOO_LARGE)
def test_an_invocation_too_large_for_one_line_is_413_before_the_app_runs(
    plugin_process, workspace, doc_flow, path, body, app_id
):
    settings = {**SETTINGS, "app": {"app_id": app_id}}
    r = plugin_process.request(post(path, body), settings)
    assert r.status == 413, r.text
    if path.startswith("/v1/chat/completions"):
        assert r.json()["error"]["code"] == "payload_too_large"
    else:
        assert (r.json()["code"], r.json()["status"]) == ("payload_too_large", 413)
    assert "too large to pass to the app" in r.text and "Traceback" not in r.text
    assert workspace.invocations == []  # refused before invoking
    assert_alive_and_serving(plugin_process)


UNPARSEABLE = {
    "non-UTF-8 header byte": [("X-Note", "caf\xe9")],
    "two Content-Type headers": [("Content-Type", "application/json"), ("content-type", "text/x")],
    "X-Original-Host a:b": [("X-Original-Host", "a:b")],
    "Host port out of range": [("X-Original-Host", "dify.example.com:99999")],
    "Host not an IPv6 literal": [("X-Original-Host", "[::1")],
    "underscore in a header name": [("X_Token", "1")],
    "non-UTF-8 cookie": [("Cookie", "session=\xff\xfe")],
}


@pytest.mark.parametrize("headers", UNPARSEABLE.values(), ids=UNPARSEABLE.keys())
@pytest.mark.parametrize("path", ["/v1/chat-messages", "/webhook", "/"])
def test_a_request_the_sdk_cannot_parse_is_a_400_json_error(
    plugin_process, workspace, path, headers
):
    base = [("Content-Type", "application/json"), ("Authorization", f"Bearer {KEY}")]
    names = {name.lower() for name, _ in headers}
    raw = daemon_request_bytes(
        "POST" if path != "/" else "GET",
        path,
        headers=[h for h in base if h[0].lower() not in names] + headers,
        body=b'{"query": "hi"}' if path != "/" else b"",
    )
    r = plugin_process.request(raw, SETTINGS)
    assert r.status == 400, r.text
    assert r.header("Content-Type") == "application/json"
    assert r.json() == {
        "code": "invalid_param",
        "message": "The HTTP request is malformed (request line, header or body framing).",
        "status": 400,
    }
    assert workspace.invocations == []
    assert_alive_and_serving(plugin_process)


FAKE_PLUGIN = """
import json, os, sys, time
sys.stdout.write(json.dumps({"event": "heartbeat", "session_id": None, "data": {}}) + "\\n\\n")
sys.stdout.flush()
sys.stdout.write("x" * (int(os.environ["LINE_BYTES"]) - 1) + "\\n")
sys.stdout.flush()
time.sleep(60)
"""


@pytest.mark.parametrize(("line_bytes", "killed"), [(MAX_LINE, False), (MAX_LINE + 1, True)])
def test_the_emulator_kills_the_plugin_on_a_line_over_the_limit_as_the_daemon_does(
    tmp_path, line_bytes, killed
):
    """bufio.Scanner with a 5 MiB buffer: a line and its newline must fit in 5 MiB."""
    (tmp_path / "fake_plugin.py").write_text(FAKE_PLUGIN)
    env = {"LINE_BYTES": str(line_bytes)}
    with PluginProcess(Workspace(), tmp_path, entrypoint="fake_plugin", env=env) as process:
        deadline = time.monotonic() + 30
        while process.running and process.longest_line < line_bytes:
            assert time.monotonic() < deadline, "the emulator read neither the line nor its end"
            time.sleep(0.01)
        assert process.running is not killed
        assert (process.longest_line == line_bytes) is not killed
        assert bool(process.stray_errors) is killed
