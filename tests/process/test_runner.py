"""The local runner: real HTTP on loopback → daemon emulator → plugin subprocess."""

import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from devkit.probe import PROBE_ROOT
from devkit.runner import Bridge, running, serve

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def runner_process():
    """``python -m devkit.runner --port 0`` exactly as the README runs it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "devkit.runner", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    banner = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            banner.append(line.rstrip("\n"))
            if line.strip().startswith("curl "):
                break
        yield proc, banner
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        proc.stdout.close()


def test_printed_url_serves_the_diagnostics_page(runner_process):
    proc, banner = runner_process
    curl_line = banner[-1].strip()
    url = re.search(r"(http://127\.0\.0\.1:\d+/e/\w+/)", curl_line).group(1)
    for endpoint_line in (line for line in banner if line.strip().startswith("GET")):
        assert endpoint_line.split()[1].startswith("http://127.0.0.1:")
    r = httpx.get(url, headers={"Authorization": "Bearer demo-key"}, timeout=10)
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert url in r.text  # the page shows the URL the caller used, not localhost
    assert "5b0f7a2e-0c1d-4a61-9a0e-0000000000c1" in r.text  # app id, for the key holder
    if shutil.which("curl"):
        out = subprocess.run(
            ["curl", "-s", url], capture_output=True, text=True, timeout=10, check=True
        )
        assert "App Bridge endpoint" in out.stdout
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0


def test_daemon_level_refusals(runner):
    base, _ = runner
    r = httpx.get(f"{base}/e/unknownhook00000/", timeout=10)
    assert r.status_code == 404
    assert json.loads(r.json()["message"])["message"] == "endpoint not found"
    r = httpx.patch(f"{base}/e/demochat00000001/", timeout=10)
    assert r.status_code == 404 and r.json() == {"code": "not_found", "message": "route not found"}
    r = httpx.head(f"{base}/e/demochat00000001/", timeout=10)
    assert r.status_code == 200 and r.content == b""


def test_forwarding_headers_never_reach_the_plugin(runner):
    base, _ = runner
    r = httpx.get(
        f"{base}/e/demochat00000001/",
        headers={"X-Forwarded-For": "203.0.113.7", "Authorization": "Bearer demo-key"},
        timeout=10,
    )
    assert r.status_code == 200 and "203.0.113.7" not in r.text


@pytest.fixture
def probe_runner(tmp_path):
    config = tmp_path / "probe.yaml"
    config.write_text(
        "apps:\n"
        "  - {id: c, mode: chat, name: C, script: {chunks: [a, b, c], delay: 0.25}}\n"
        "endpoints:\n"
        "  - {hook_id: probe00000000001, endpoint_id: ep-probe, settings: {}}\n"
    )
    with running(Bridge(config, root=PROBE_ROOT)) as base:
        yield f"{base}/e/probe00000000001"


def test_streamed_chunks_are_flushed_one_by_one_over_http(probe_runner):
    spec = {"kind": "chat", "app_id": "c", "query": "q", "inputs": {}, "response_mode": "streaming"}
    arrivals, lines = [], []
    with httpx.stream("POST", f"{probe_runner}/app", json=spec, timeout=10) as r:
        assert r.headers.get("transfer-encoding") == "chunked"
        for line in r.iter_lines():
            if line:
                arrivals.append(time.monotonic())
                lines.append(json.loads(line)["event"]["event"])
    assert lines == ["message", "message", "message", "message_end"]
    assert all(b - a > 0.15 for a, b in itertools.pairwise(arrivals))


def test_null_endpoint_over_http(probe_runner):
    r = httpx.get(f"{probe_runner}/null", timeout=10)
    assert (r.status_code, r.text) == (200, "ok")


def test_no_stray_children_after_stop():
    """Stopping the runner stops the plugin process it started."""
    bridge = Bridge(ROOT / "devkit" / "demo.yaml")
    server = serve(bridge, port=0)
    pid = bridge.plugin._proc.pid
    server.server_close()
    bridge.plugin.stop()
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("plugin process still alive after stop()")


def test_root_lists_every_endpoint_linked_to_its_diagnostics_page(runner):
    base, bridge = runner
    r = httpx.get(f"{base}/", timeout=10)
    assert r.status_code == 200 and r.headers["content-type"] == "text/html; charset=utf-8"
    for hook_id in bridge.endpoints:
        assert f'<a href="{base}/e/{hook_id}/">{hook_id}</a>' in r.text
    assert "Demo weather workflow (workflow)" in r.text


def test_a_busy_port_is_one_line_naming_port(runner):
    base, _ = runner
    port = base.rsplit(":", 1)[1]
    proc = subprocess.run(
        [sys.executable, "-m", "devkit.runner", "--port", port],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "--port" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_dev_help_and_unknown_commands():
    dev = ROOT / "dev"
    shown = subprocess.run(
        [str(dev), "help"], capture_output=True, text=True, timeout=30, check=False
    )
    assert shown.returncode == 0 and "./dev keygen" in shown.stdout
    assert "set -" not in shown.stdout and "#" not in shown.stdout
    unknown = subprocess.run(
        [str(dev), "nonsense"], capture_output=True, text=True, timeout=30, check=False
    )
    assert unknown.returncode == 2
    assert unknown.stderr.splitlines()[0] == "./dev: unknown command 'nonsense'"
