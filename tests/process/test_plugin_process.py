"""Process level: ``python -m main`` as a subprocess over the SDK's stdio protocol."""

import itertools
import json
import threading
import time

import pytest
from conftest import SETTINGS

from devkit.daemon import PluginProcess
from devkit.probe import PROBE_ROOT
from devkit.wire import daemon_request_bytes
from devkit.workspace import App, Script, Workspace


def test_diagnostics_through_the_real_process(plugin_process):
    raw = daemon_request_bytes(
        "GET",
        "/",
        headers={"Dify-Hook-Url": "https://dify.io/e/abcdefabcdef0123/"},
        hook_id="abcdefabcdef0123",
    )
    r = plugin_process.request(raw, SETTINGS)
    assert r.status == 200
    assert "https://dify.io/e/abcdefabcdef0123/" in r.text
    assert int(r.header("Content-Length")) == len(r.body)


def test_concurrent_sessions_are_demultiplexed(plugin_process):
    results = {}

    def call(i):
        hook = f"hook{i:012d}"
        raw = daemon_request_bytes(
            "GET", "/", headers={"Dify-Hook-Url": f"https://d.io/e/{hook}/"}, hook_id=hook
        )
        results[i] = plugin_process.request(raw, SETTINGS)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 20
    for i, r in results.items():
        assert r.status == 200
        assert f"https://d.io/e/hook{i:012d}/" in r.text


def test_family_error_for_unknown_route_over_stdio(plugin_process):
    r = plugin_process.request(daemon_request_bytes("DELETE", "/v1/x"), SETTINGS)
    assert r.status == 404 and r.json()["code"] == "not_found"


def test_handler_machinery_failure_is_relayed_like_the_daemon(probe):
    """An underscore header makes the SDK fail before routing; the daemon relays the error.

    The probe plugin runs the bare SDK (App Bridge answers 400 instead: test_lines_process).
    """
    r = probe.request(daemon_request_bytes("GET", "/", headers={"X_under": "1"}), {})
    assert r.status == 500
    assert json.loads(r.body)["message"] == "Invalid HTTP header"


@pytest.fixture(scope="module")
def probe():
    with PluginProcess(Workspace(), PROBE_ROOT) as process:
        yield process


def probe_call(process, path, spec):
    raw = daemon_request_bytes(
        "POST", path, headers={"Content-Type": "application/json"}, body=json.dumps(spec).encode()
    )
    return process.send(raw, {})


def test_app_events_stream_through_stdio_one_chunk_each(probe):
    probe.workspace = Workspace(
        [App("c", "chat", script=Script(chunks=["a", "b", "c"], delay=0.2))]
    )
    reply = probe_call(
        probe,
        "/app",
        {"kind": "chat", "app_id": "c", "query": "q", "inputs": {}, "response_mode": "streaming"},
    )
    assert reply.status == 200
    arrivals, lines = [], []
    for chunk in reply.chunks:
        arrivals.append(time.monotonic())
        lines.append(json.loads(chunk))
    assert [line["event"]["event"] for line in lines] == [
        "message",
        "message",
        "message",
        "message_end",
    ]
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert all(gap > 0.1 for gap in gaps)  # each event arrived on its own, as the app produced it
    (inv,) = probe.workspace.invocations
    assert (inv.app_id, inv.query, inv.response_mode, inv.user_id) == ("c", "q", "streaming", "")


def test_blocking_and_errors_through_stdio(probe):
    probe.workspace = Workspace([App("w", "workflow"), App("g", "agent-chat")])
    reply = probe_call(
        probe,
        "/app",
        {"kind": "workflow", "app_id": "w", "inputs": {}, "response_mode": "blocking"},
    ).collect()
    (line,) = [json.loads(x) for x in reply.body.splitlines()]
    assert line["event"]["data"]["status"] == "succeeded"
    reply = probe_call(
        probe,
        "/app",
        {"kind": "chat", "app_id": "g", "query": "q", "inputs": {}, "response_mode": "blocking"},
    ).collect()
    assert "Agent Chat App does not support blocking mode" in json.loads(reply.body)["exception"]


def test_app_probe_makes_its_storage_calls_after_the_first_event(probe):
    """The benchmarks' floor: an invoke, then the given storage calls in order (devkit/bench)."""
    probe.workspace = Workspace([App("c", "chat", script=Script(chunks=["a", "b"]))])
    spec = {"kind": "chat", "app_id": "c", "query": "q", "inputs": {}, "response_mode": "streaming"}
    calls = [{"op": "set", "key": "k", "value": "v1"}, {"op": "get", "key": "k"},
             {"op": "set", "key": "k", "value": "v2"}]  # fmt: skip
    lines = [json.loads(x) for x in probe_call(probe, "/app", {**spec, "storage": calls}).collect().body.splitlines()]  # fmt: skip
    assert [line["event"]["event"] for line in lines] == ["message", "message", "message_end"]
    assert probe.workspace.storage.ops == ["set", "get", "set"]
    assert probe.workspace.storage.data == {"k": b"v2"}
    # a call that fails is reported where it was made: after the first event
    missing = [{"op": "get", "key": "missing"}]
    lines = [json.loads(x) for x in probe_call(probe, "/app", {**spec, "storage": missing}).collect().body.splitlines()]  # fmt: skip
    assert [next(iter(line)) for line in lines] == ["event", "exception"]
    assert lines[1]["exception"].startswith("load data failed")


def test_storage_through_stdio(probe):
    probe.workspace = Workspace()
    assert probe_call(probe, "/storage", {"op": "get", "key": "k"}).collect().json() == {
        "exception": "load data failed, please check if the key is correct or you have not set it"
    }
    assert probe_call(
        probe, "/storage", {"op": "set", "key": "k", "value": "v"}
    ).collect().json() == {"result": None}
    assert probe_call(probe, "/storage", {"op": "get", "key": "k"}).collect().json() == {
        "result": "v"
    }
    assert probe.workspace.storage.data == {"k": b"v"}


def test_oversized_line_kills_the_plugin_like_the_daemon():
    """A non-streamed body over ~2.5 MB exceeds the daemon's 5 MiB line: plugin killed."""
    ws = Workspace([App("c", "chat", script=Script(answer="x" * 3_000_000, chunks=None))])
    with PluginProcess(ws, PROBE_ROOT) as process:
        raw = daemon_request_bytes("POST", "/app", headers={"Content-Type": "application/json"},
                                   body=json.dumps({"kind": "chat", "app_id": "c", "query": "q", "inputs": {}, "response_mode": "blocking"}).encode())  # fmt: skip
        with pytest.raises(Exception, match="exited"):
            process.request(raw, {})
        assert not process.running
