"""Behaviours found on the real daemon (docs/real-daemon.md), emulated and guarded."""

import json

from devkit.daemon import PluginProcess
from devkit.wire import daemon_request_bytes
from devkit.workspace import App, Script

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
