"""Behaviours found on the real daemon (docs/real-daemon.md), emulated and guarded."""

import json

from devkit.daemon import PluginProcess
from devkit.wire import daemon_error_body, daemon_request_bytes
from devkit.workspace import App, Script, Workspace

AUTH = {"Authorization": "Bearer test-key", "Content-Type": "application/json"}


def stream_messages(*chunks, end=True):
    messages = [{"type": "stream", "data": {"status": 200, "headers": {"A": "1"}}}]
    messages += [{"type": "stream", "data": {"result": c.hex()}} for c in chunks]

    def generate():
        yield from messages

    return generate()


def test_relay_drops_chunks_after_the_first_when_end_had_arrived():
    """endpoint_service.go InvokeEndpoint: `if resp.IsClosed() { response.Close() }`."""
    cut = PluginProcess._relay(stream_messages(b"one", b"two", b"three"), ended=lambda: True)
    assert cut.collect().body == b"one"
    whole = PluginProcess._relay(stream_messages(b"one", b"two", b"three"), ended=lambda: False)
    assert whole.collect().body == b"onetwothree"


def test_a_fast_stream_arrives_whole(plugin_process, workspace):
    """No delay between events: without the plugin's end grace the daemon cuts the body."""
    workspace.add_app(App("fast-wf", "workflow", script=Script(answer="a b c d e f g h")))
    settings = {"api_key": "test-key", "app": {"app_id": "fast-wf"}}
    body = json.dumps({"inputs": {}, "response_mode": "streaming"}).encode()
    for _ in range(5):
        raw = daemon_request_bytes("POST", "/v1/workflows/run", headers=AUTH, body=body)
        reply = plugin_process.request(raw, settings)
        frames = [f for f in reply.body.decode().split("\n\n") if f.startswith("data: ")]
        assert json.loads(frames[-1][6:])["event"] == "workflow_finished"
        assert len(frames) == len(workspace.emitted[-1])


def test_openai_sdk_reads_reasoning_content_from_the_demo(runner):
    """DeepSeek-style clients read ``reasoning_content``; the answer stays clean."""
    from openai import OpenAI

    client = OpenAI(base_url=f"{runner[0]}/e/demothinking0001/v1", api_key="demo-key",
                    max_retries=0, timeout=20)  # fmt: skip
    stream = client.chat.completions.create(model="m", stream=True,
                                            messages=[{"role": "user", "content": "life"}])  # fmt: skip
    reasoning = content = ""
    for chunk in stream:
        if chunk.choices:
            reasoning += getattr(chunk.choices[0].delta, "reasoning_content", None) or ""
            content += chunk.choices[0].delta.content or ""
    assert content == "The answer to life is 42."
    assert reasoning == "The user asks about life. Recall the classic answer, then state it."
    done = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert done.choices[0].message.content == "The answer to x is 42."
    assert getattr(done.choices[0].message, "reasoning_content", "").startswith("The user asks")


def test_paused_workflow_through_the_runner(runner):
    """The demo approval workflow pauses at its Human Input node: Dify's paused shape."""
    import httpx

    r = httpx.post(f"{runner[0]}/e/demoapproval0001/v1/workflows/run", timeout=20,
                   headers={"Authorization": "Bearer demo-key"},
                   json={"inputs": {"query": "refund?"}, "user": "u"})  # fmt: skip
    data = r.json()["data"]
    assert (data["status"], data["finished_at"], data["outputs"]) == ("paused", None, {})
    assert data["reasons"][0]["TYPE"] == "human_input_required"


def test_the_execution_timer_starts_at_the_first_body_chunk():
    """PLUGIN_MAX_EXECUTION_TIMEOUT as measured on the real daemon (3 s there): an answer whose
    first byte took longer comes through whole; a body still running that long after its
    first chunk is cut, the timeout error appended (status 200 already sent)."""
    workspace = Workspace([
        App("late-chat", "chat", script=Script(answer="late but whole", first_delay=1.5)),
        App("long-wf", "workflow", script=Script(answer=" ".join(["w"] * 40), delay=0.25)),
    ])  # fmt: skip
    with PluginProcess(workspace, execution_timeout=1.0) as proc:
        chat = json.dumps({"query": "q"}).encode()
        late = proc.request(daemon_request_bytes("POST", "/v1/chat-messages", headers=AUTH,
                                                 body=chat),
                            {"api_key": "test-key", "app": {"app_id": "late-chat"}})  # fmt: skip
        assert late.status == 200 and late.json()["answer"] == "late but whole"
        run = json.dumps({"inputs": {}, "response_mode": "streaming"}).encode()
        long = proc.request(daemon_request_bytes("POST", "/v1/workflows/run", headers=AUTH,
                                                 body=run),
                            {"api_key": "test-key", "app": {"app_id": "long-wf"}})  # fmt: skip
        assert long.status == 200 and long.body.startswith(b"data: ")
        assert long.body.endswith(daemon_error_body(-500, "killed by timeout"))
        assert b"workflow_finished" not in long.body
