"""Memory stays flat on a 50 MB stream, on every streaming route (issue 10).

The plugin process's peak RSS (``VmHWM``, reset through ``/proc/<pid>/clear_refs``) is
measured around one 50 MB app stream per route; a route that kept its events — or the
answer text, as the OpenAI facade did for its transcript digest (+240 MB) — would grow by
about the stream's size. Blocking modes hold the answer by nature (the body is whole).
"""

import json
from pathlib import Path

import pytest

from devkit.daemon import PluginProcess
from devkit.wire import daemon_request_bytes
from devkit.workspace import App, Script, Workspace

STREAM_BYTES = 50_000_000
PIECE = "x" * 65_535 + " "  # one 64 KiB answer delta per event
KEPT_AT_MOST = 20 * 1024  # KiB: under half the stream; routes that keep nothing grow ~1 MB

OPENAI = {"model": "m", "messages": [{"role": "user", "content": "go"}], "stream": True}
ROUTES = {
    "chat-messages": ("chat", "/v1/chat-messages", {"query": "go", "response_mode": "streaming"}),
    "chat-messages (chatflow)": (
        "flow", "/v1/chat-messages", {"query": "go", "response_mode": "streaming"}),
    "completion-messages": ("completion", "/v1/completion-messages",
                            {"inputs": {}, "response_mode": "streaming"}),
    "workflows/run": ("workflow", "/v1/workflows/run", {"inputs": {}, "response_mode": "streaming"}),
    "chat/completions": ("chat", "/v1/chat/completions", OPENAI),
    "chat/completions (workflow)": ("workflow", "/v1/chat/completions", OPENAI),
}  # fmt: skip


def kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


@pytest.fixture(scope="module")
def streaming_plugin():
    chunks = [PIECE] * (STREAM_BYTES // len(PIECE))
    apps = [
        App("chat", "chat", script=Script(chunks=chunks)),
        App("flow", "advanced-chat", script=Script(chunks=chunks)),
        App("completion", "completion", script=Script(chunks=chunks)),
        App("workflow", "workflow", script=Script(chunks=chunks, outputs={"text": "done"})),
    ]
    with PluginProcess(Workspace(apps)) as process:
        clear_refs = Path(f"/proc/{process._proc.pid}/clear_refs")
        try:
            clear_refs.write_text("5")
        except OSError:
            pytest.skip("peak RSS cannot be reset on this system (/proc/<pid>/clear_refs)")
        yield process


@pytest.mark.parametrize(("app_id", "path", "body"), ROUTES.values(), ids=ROUTES.keys())
def test_peak_memory_stays_flat_on_a_50_mb_stream(streaming_plugin, app_id, path, body):
    process = streaming_plugin
    pid = process._proc.pid
    settings = {"api_key": "k", "app": {"app_id": app_id}}
    raw = daemon_request_bytes(
        "POST", path, headers={"Content-Type": "application/json", "Authorization": "Bearer k"},
        body=json.dumps(body).encode(),
    )  # fmt: skip
    process.request(daemon_request_bytes("GET", "/"), settings)  # warm: modules, caches
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    before = kib(pid, "VmRSS")
    reply = process.send(raw, settings)
    streamed = sum(len(chunk) for chunk in reply.chunks)
    assert reply.status == 200 and streamed > STREAM_BYTES
    grown = kib(pid, "VmHWM") - before
    process.workspace.emitted.clear()
    assert grown < KEPT_AT_MOST, f"{path} kept {grown} KiB while streaming {streamed} bytes"
