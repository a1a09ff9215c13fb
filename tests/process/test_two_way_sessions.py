"""The emulator's session model (daemon-notes §A(1)), over its loopback HTTP listener.

Each request is a new session; a session ends with the plugin's ``end``/``error`` or when the
HTTP client disconnects, and backwards invocations of an ended session are never answered.
The plugin finds the listener's port in ``SERVER_PORT``.
"""

import json
import socket
import time

import httpx
import pytest

from devkit.daemon import PluginProcess
from devkit.probe import PROBE_ROOT
from devkit.workspace import Workspace

HOOK = "probe00000000001"


def wait_for(condition, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def probe():
    with PluginProcess(Workspace(), PROBE_ROOT) as process:
        process.register(HOOK, "ep-probe", {})
        yield process


def test_plugin_gets_server_port_and_requests_there_are_sessions(probe):
    assert probe.server_port and probe.base_url.startswith("http://127.0.0.1:")
    before = len(probe.opened)
    r1 = httpx.get(f"{probe.base_url}/e/{HOOK}/null", timeout=10)
    r2 = httpx.get(f"{probe.base_url}/e/{HOOK}/null", timeout=10)
    assert (r1.status_code, r1.text, r2.text) == (200, "ok", "ok")
    first, second = probe.opened[before:]
    assert first != second  # a new request is a new session
    # the client has its whole body (Content-Length) before the relay reads the plugin's end
    assert wait_for(lambda: [probe.ended_sessions.get(s) for s in (first, second)] == ["end"] * 2)


def test_unknown_hook_is_the_daemons_404(probe):
    r = httpx.get(f"{probe.base_url}/e/unknownhook00000/null", timeout=10)
    assert r.status_code == 404
    assert json.loads(r.json()["message"])["message"] == "endpoint not found"


def raw_post(port, path, body):
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock.sendall(head + body)
    return sock


def test_backwards_invocation_after_client_disconnect_is_never_answered(probe, tmp_path):
    go = tmp_path / "go"
    spec = json.dumps({"op": "set", "key": "k", "value": "v", "after_file": str(go)}).encode()
    before = len(probe.opened)
    sock = raw_post(probe.server_port, f"/e/{HOOK}/storage", spec)
    received = b""
    while b"ready" not in received:  # the plugin is in the handler, its session live
        piece = sock.recv(4096)
        assert piece, "connection closed before the first chunk"
        received += piece
    (session_id,) = probe.opened[before:]
    sock.close()  # the client gives up
    assert wait_for(lambda: probe.ended_sessions.get(session_id) == "client disconnected")
    go.touch()  # only now does the plugin make its storage call
    assert wait_for(lambda: any(d["session_id"] == session_id for d in probe.dropped))
    (drop,) = [d for d in probe.dropped if d["session_id"] == session_id]
    assert drop == {"session_id": session_id, "type": "storage", "why": "client disconnected"}
    assert probe.workspace.storage.ops == []  # never answered, never run
    # the process lives on: the next request is a fresh session and works
    r = httpx.post(
        f"{probe.base_url}/e/{HOOK}/storage", json={"op": "set", "key": "k2", "value": "v"}
    )
    assert r.json() == {"result": None}
    assert probe.opened[-1] != session_id
    assert probe.workspace.storage.data == {"k2": b"v"}


def test_answer_in_flight_when_the_session_ends_is_not_written(probe, tmp_path):
    """An invocation already sent when the client leaves gets no answer either."""
    from devkit.workspace import App, Script

    probe.workspace = Workspace([App("slow", "chat", script=Script(chunks=["a"], first_delay=1))])
    spec = json.dumps(
        {"kind": "chat", "app_id": "slow", "query": "q", "inputs": {}, "response_mode": "streaming"}
    ).encode()
    before = len(probe.opened)
    sock = raw_post(probe.server_port, f"/e/{HOOK}/app", spec)
    assert wait_for(lambda: probe.workspace.invocations)  # Dify received the app call
    (session_id,) = probe.opened[before:]
    sock.close()
    assert wait_for(lambda: any(d["session_id"] == session_id for d in probe.dropped))
    assert probe.ended_sessions[session_id] == "client disconnected"
