"""End to end under Dify's real plugin daemon, compared with our emulated daemon.

Optional: runs only when pointed at a daemon built by hand from
``langgenius/dify-plugin-daemon`` and its services (docs/real-daemon.md), skipped otherwise:

- ``APP_BRIDGE_DAEMON_BIN``: the daemon's ``server`` binary (local runtime);
- ``APP_BRIDGE_DAEMON_CLI``: optional, its ``commandline`` binary: each run then migrates a
  fresh database ``app_bridge_e2e_<random>`` (else the DSN's database must be migrated);
- ``APP_BRIDGE_PG_DSN``: ``postgresql://user:password@127.0.0.1:5432/dify_plugin``;
- ``APP_BRIDGE_REDIS_URL``: ``redis://:password@127.0.0.1:6379/0``;
- ``APP_BRIDGE_DAEMON_PYTHON``: optional, a Python 3.12 with the ``uv`` package (the
  daemon's ``PYTHON_INTERPRETER_PATH``; default: this interpreter).

The test builds the package (``devkit.package``), starts the daemon on loopback with a
stand-in for Dify's inner API (:mod:`devkit.inner_api`) serving the apps below, installs
the package through the management API (unsigned: ``FORCE_VERIFYING_SIGNATURE=false``),
sets up one endpoint per case, and sends each request both to the real daemon and to the
local runner (our emulated daemon, same workspace, same hook ids): status, content type
and bodies must agree once run-specific ids and times are masked. Every server it starts
is stopped; a fresh tenant id keeps runs apart in a shared database.

Two-way webhooks (docs/two-way.md): loopback fakes of the platform APIs
(:mod:`devkit.fakes`) are served next to the daemon and their API bases put into the
daemon's environment, which the plugin inherits; the runner has fakes of its own. Runs of the
slow apps wait at the inner-API stand-in until the test opens a gate, so "the ack came before
the app finished" needs no clock.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml
from reply_targets import assert_reply_target
from signers import API_KEY as KEY_OF_HOOKS
from signers import SCHEMES, sign
from signers import settings as scheme_settings

from bridge.protocols import continuation
from bridge.replies.base import FAILED_MESSAGE
from devkit.deliver import payload
from devkit.fakes import FakePlatforms
from devkit.inner_api import InnerApi
from devkit.package import build_package
from devkit.runner import Bridge, running
from devkit.workspace import InvocationFailed, Workspace, inner_api_error

REPO = Path(__file__).resolve().parents[2]
DAEMON_BIN = os.environ.get("APP_BRIDGE_DAEMON_BIN", "")
pytestmark = pytest.mark.skipif(
    not DAEMON_BIN, reason="set APP_BRIDGE_DAEMON_BIN (and PG/Redis) to run against a real daemon"
)

KEY = "rd-key-0001"
INSTALL_TIMEOUT = 900.0  # the first install builds a venv with uv from PyPI
APPS: list[dict[str, Any]] = [
    {"id": "rd-chat", "mode": "chat", "name": "Chat",
     "user_input_form": [{"text-input": {"label": "Name", "variable": "name"}}],
     "script": {"answer": "Hello {inputs[name]}! You said: {query}"}},
    {"id": "rd-agent", "mode": "agent-chat", "name": "Agent"},
    {"id": "rd-flow", "mode": "advanced-chat", "name": "Chatflow"},
    {"id": "rd-completion", "mode": "completion", "name": "Completion",
     "user_input_form": [{"paragraph": {"label": "Q", "variable": "query", "required": True}}],
     "script": {"answer": "Summary: {inputs[query]}"}},
    {"id": "rd-workflow", "mode": "workflow", "name": "Workflow",
     "user_input_form": [{"text-input": {"label": "City", "variable": "city", "required": True}},
                         {"text-input": {"label": "Query", "variable": "query"}}],
     "script": {"answer": "Sunny in {inputs[city]}", "outputs": {"result": "Sunny in {inputs[city]}"}}},
    {"id": "rd-think", "mode": "advanced-chat", "name": "Thinker",
     "script": {"answer": "Forty two.", "reasoning": "Let me think step by step."}},
    {"id": "rd-think-wf", "mode": "workflow", "name": "Thinking workflow",
     "script": {"answer": "Done.", "reasoning": "Weigh it."}},
    {"id": "rd-pause-wf", "mode": "workflow", "name": "Approval", "script": {"pause": True}},
    {"id": "rd-pause-flow", "mode": "advanced-chat", "name": "Approval chat",
     "script": {"answer": "Draft ready.", "pause": True}},
    {"id": "rd-future", "mode": "chat", "name": "Future",
     "script": {"answer": "still fine", "extra_events": [
         {"event": "hologram_rendered", "data": {"ratio": 1.5, "whole": 2.0}},
         {"event": "human_input_form_timeout", "data": {"node_id": "n", "node_title": "t",
                                                         "expiration_time": 1767225600}}]}},
    {"id": "rd-floats", "mode": "workflow", "name": "Numbers",
     "script": {"outputs": {"n": 2.0, "x": 0.25, "big": 1152921504606846977, "html": "<b>&</b>"}}},
    {"id": "rd-broken", "mode": "chat", "name": "Broken", "script": {"answer": "a b c d",
                                                                      "fail_after": 2}},
    {"id": "rd-error", "mode": "chat", "name": "Erroring", "script": {"answer": "a b c",
                                                                       "error_after": 1}},
    {"id": "rd-echo", "mode": "workflow", "name": "Echo",
     "user_input_form": [{"paragraph": {"label": "Doc", "variable": "doc"}}],
     "script": {"outputs": {"doc": "{inputs[doc]}"}}},
    # two-way: runs of these wait at the inner-API stand-in until the test opens the gate
    {"id": "rd-slow", "mode": "chat", "name": "Slow", "script": {"answer": "The answer to: {query}"}},
    {"id": "rd-slow-fetch", "mode": "chat", "name": "Slow to describe",
     "script": {"answer": "The answer to: {query}"}},
]  # fmt: skip
WEBHOOK_SCHEMES = SCHEMES  # all twelve verification schemes
SLOW_APPS = frozenset({"rd-slow", "rd-slow-fetch"})  # their runs wait for Gates.run
SLOW_FETCH = "rd-slow-fetch"  # its fetch_app waits for Gates.fetch
GATE_TIMEOUT = 60.0  # a gate the test never opens fails the run, it never hangs
TOKENS = {"slack": "xoxb-rd-token", "discord": "", "telegram": "123456:ABCrdTOKENxyz0123456789",
          "line": "line-rd-access-token", "whatsapp": "whatsapp-rd-token", "github": "ghp_rdtoken",
          "gitlab": "glpat-rdtoken",
          "callback": "whsec_" + "cmQtY2FsbGJhY2stc2lnbmluZy1rZXktMzJieXRlcw=="}  # fmt: skip
TWO_WAY = {  # platform -> webhook_verification
    "slack": "slack", "discord": "discord", "telegram": "telegram", "line": "line",
    "whatsapp": "meta", "github": "github", "gitlab": "gitlab", "callback": "api_key",
}  # fmt: skip


def _endpoints() -> dict[str, dict[str, Any]]:
    plain = {app["id"]: {"api_key": KEY, "app": {"app_id": app["id"]}} for app in APPS}
    plain["rd-workflow"]["query_variable"] = "query"
    plain["rd-cors"] = {**plain["rd-chat"], "cors_allowed_origins": "https://app.example"}
    hooks = {f"wh-{s}": scheme_settings(s, "rd-chat", webhook_response="text")
             for s in WEBHOOK_SCHEMES}  # fmt: skip
    hooks["wh-pause"] = scheme_settings("api_key", "rd-pause-flow", webhook_response="text")
    hooks["wh-echo"] = scheme_settings(  # the whole request document, as the plugin saw it
        "api_key", "rd-echo", webhook_response="outputs", webhook_inputs='{"doc": "@"}'
    )
    for platform, scheme in TWO_WAY.items():  # ack now, run in a continuation, reply later
        hooks[f"tw-{platform}"] = scheme_settings(
            scheme, "rd-slow", webhook_reply=platform, reply_token=TOKENS[platform]
        )
    hooks["tw-callback"]["reply_url"] = "$FAKES/callback/results"  # the fakes' URL at setup
    hooks["tw-fetch"] = scheme_settings(
        "slack", SLOW_FETCH, webhook_reply="slack", reply_token=TOKENS["slack"]
    )
    for app in ("rd-error", "rd-broken"):  # the app fails: a plain message on the platform
        hooks[f"tw-{app}"] = scheme_settings(
            "slack", app, webhook_reply="slack", reply_token=TOKENS["slack"]
        )
    hooks["tw-fallback"] = scheme_settings(  # no continuation: the run happens inline
        "github", "rd-slow", webhook_reply="github", reply_token=TOKENS["github"],
        self_url="http://127.0.0.1:9/e/nowhere",
    )  # fmt: skip
    return {**plain, **hooks}


ENDPOINTS = _endpoints()


def with_fakes(settings: dict[str, Any], fakes_url: str) -> dict[str, Any]:
    """``$FAKES`` in a setting → the fake platforms' base URL (as ``devkit.runner`` does)."""
    return {
        k: v.replace("$FAKES", fakes_url) if isinstance(v, str) else v for k, v in settings.items()
    }


class Gate:
    """A point an app run (or app lookup) waits at until the test opens it; open by default."""

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.opened.set()
        self.reached = threading.Event()

    def close(self) -> None:
        self.reached.clear()
        self.opened.clear()

    def open(self) -> None:
        self.opened.set()

    def wait(self) -> None:
        self.reached.set()
        if not self.opened.wait(GATE_TIMEOUT):
            raise InvocationFailed(inner_api_error("the test never opened the gate"))


class GatedWorkspace(Workspace):
    """The stand-in's apps; runs of :data:`SLOW_APPS` are slower than any platform's budget:
    they wait until the test opens :attr:`run` (the ack must not wait for them)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.run, self.fetch = Gate(), Gate()

    def run_app_raw(self, request: Any, *, user_id: str = "") -> Iterator[dict]:
        if request.get("app_id") in SLOW_APPS:
            self.run.wait()
        yield from super().run_app_raw(request, user_id=user_id)

    def fetch_app(self, request: Any) -> dict[str, Any]:
        if request.get("app_id") == SLOW_FETCH:
            self.fetch.wait()
        return super().fetch_app(request)


# -- environment --------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _daemon_env(
    work: Path,
    inner: InnerApi,
    port: int,
    server_key: str,
    database: str | None,
    fakes: FakePlatforms,
) -> dict[str, str]:
    pg = urlsplit(
        os.environ.get("APP_BRIDGE_PG_DSN", "postgresql://postgres@127.0.0.1:5432/dify_plugin")
    )
    redis = urlsplit(os.environ.get("APP_BRIDGE_REDIS_URL", "redis://127.0.0.1:6379"))
    python = os.environ.get("APP_BRIDGE_DAEMON_PYTHON", sys.executable)
    base_bin = str(Path(sys.base_prefix) / "bin")  # a python3.12 for `uv venv --python 3.12`
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DIFY_", "APP_BRIDGE_"))}
    env.update({
        "PLATFORM": "local", "SERVER_HOST": "127.0.0.1", "SERVER_PORT": str(port),
        "SERVER_KEY": server_key, "DIFY_INNER_API_URL": inner.url, "DIFY_INNER_API_KEY": inner.key,
        "PLUGIN_STORAGE_TYPE": "local", "PLUGIN_STORAGE_LOCAL_ROOT": str(work / "storage"),
        "PLUGIN_WORKING_PATH": str(work / "cwd"), "PLUGIN_INSTALLED_PATH": str(work / "plugin"),
        "DB_TYPE": "postgresql", "DB_USERNAME": pg.username or "postgres",
        "DB_PASSWORD": pg.password or "", "DB_HOST": pg.hostname or "127.0.0.1",
        "DB_PORT": str(pg.port or 5432),
        "DB_DATABASE": database or pg.path.lstrip("/") or "dify_plugin",
        "DB_SSL_MODE": "disable", "REDIS_HOST": redis.hostname or "127.0.0.1",
        "REDIS_PORT": str(redis.port or 6379), "REDIS_PASSWORD": redis.password or "",
        "REDIS_DB": redis.path.lstrip("/") or "0",
        "PLUGIN_REMOTE_INSTALLING_ENABLED": "false", "FORCE_VERIFYING_SIGNATURE": "false",
        "PIP_MIRROR_AUTO_DETECT": "false", "PYTHON_INTERPRETER_PATH": python,
        "UV_PYTHON_DOWNLOADS": "never", "PATH": f"{base_bin}:{env.get('PATH', '')}",
        "GIN_MODE": "release",
    })  # fmt: skip
    # the plugin inherits the daemon's environment: platform API bases at the loopback fakes,
    # and the fakes' host allowed as a callback ``reply_url``
    env.update(fakes.environment())
    return env


@dataclass
class Daemon:
    base: str
    inner: InnerApi
    hooks: dict[str, str]  # endpoint name -> hook id
    runner: str  # the local runner (emulated daemon), same hooks
    bridge: Bridge
    log: Path
    identifier: str
    endpoint_ids: dict[str, str]  # endpoint name -> endpoint id
    fakes: FakePlatforms  # the platform APIs the real daemon's plugin replies to
    workspace: GatedWorkspace  # the inner-API stand-in's apps


class Management:
    def __init__(self, base: str, key: str, tenant: str) -> None:
        self.client = httpx.Client(
            base_url=f"{base}/plugin/{tenant}", headers={"X-Api-Key": key}, timeout=60
        )

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        body = self.client.request(method, path, **kwargs).json()
        assert body.get("code") == 0, f"{path}: {body}"
        return body["data"]


def _wait_healthy(base: str, proc: subprocess.Popen, log: Path) -> None:
    for _ in range(300):  # bounded: 60 s
        if proc.poll() is not None:
            pytest.fail(f"daemon exited ({proc.returncode}): {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{base}/health/check", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail("daemon did not become healthy within 60 s")


def _install(manage: Management, package: Path) -> str:
    with package.open("rb") as handle:
        uploaded = manage.call("POST", "/management/install/upload/package",
                               files={"dify_pkg": (package.name, handle)})  # fmt: skip
    identifier = uploaded["unique_identifier"]
    task = manage.call("POST", "/management/install/identifiers", json={
        "plugin_unique_identifiers": [identifier], "source": "package", "metas": [{}]})  # fmt: skip
    if task.get("all_installed"):
        return identifier
    deadline = time.monotonic() + INSTALL_TIMEOUT
    while time.monotonic() < deadline:
        status = manage.call("GET", f"/management/install/tasks/{task['task_id']}")
        if status["status"] == "success":
            return identifier
        if status["status"] == "failed":
            pytest.fail(
                f"install failed: {[str(p.get('message'))[-1500:] for p in status['plugins']]}"
            )
        time.sleep(2)
    pytest.fail(f"install did not finish within {INSTALL_TIMEOUT:g} s")


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    work = tmp_path_factory.mktemp("realdaemon")
    # uv finds this from the plugin's directory: daemons before 0.6.9 run `uv pip install`
    # with a bare environment (no SSL_CERT_FILE), so let uv use the system trust store
    (work / "uv.toml").write_text("native-tls = true\n", encoding="utf-8")
    config = {"apps": APPS, "endpoints": []}
    (work / "workspace.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    workspace = GatedWorkspace.from_yaml(work / "workspace.yaml")
    assert isinstance(workspace, GatedWorkspace)
    server_key, tenant, port = uuid.uuid4().hex, str(uuid.uuid4()), _free_port()
    with InnerApi(workspace, uuid.uuid4().hex) as inner, FakePlatforms() as fakes:
        cli = os.environ.get("APP_BRIDGE_DAEMON_CLI")
        # with the CLI, a fresh database per run (``migrate`` creates it); else the DSN's
        database = f"app_bridge_e2e_{uuid.uuid4().hex[:12]}" if cli else None
        env = _daemon_env(work, inner, port, server_key, database, fakes)
        if cli:
            subprocess.run([cli, "migrate"], env=env, cwd=work, check=True, timeout=120,
                           capture_output=True)  # fmt: skip
        log = work / "daemon.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([DAEMON_BIN], env=env, cwd=work, stdout=out, stderr=out)
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(base, proc, log)
            manage = Management(base, server_key, tenant)
            identifier = _install(manage, build_package(REPO, work))
            for name, settings in ENDPOINTS.items():
                manage.call("POST", "/endpoint/setup", json={
                    "plugin_unique_identifier": identifier, "user_id": "admin", "name": name,
                    "settings": with_fakes(settings, fakes.url)})  # fmt: skip
            listed = manage.call("GET", "/endpoint/list", params={"page": 1, "page_size": 100})
            hooks = {e["name"]: e["hook_id"] for e in listed}
            endpoint_ids = {e["name"]: e["id"] for e in listed}
            config["endpoints"] = [
                {"hook_id": e["hook_id"], "endpoint_id": e["id"], "settings": ENDPOINTS[e["name"]]}
                for e in listed
            ]
            (work / "runner.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
            # the runner's own fakes (``$FAKES`` → their URL): emulated replies go there
            bridge = Bridge(work / "runner.yaml", fakes_port=0)
            with running(bridge) as runner:
                yield Daemon(
                    base,
                    inner,
                    hooks,
                    runner,
                    bridge,
                    log,
                    identifier,
                    endpoint_ids,
                    fakes,
                    workspace,
                )
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


# -- comparing answers -----------------------------------------------------------------------

VOLATILE = frozenset({
    "id", "task_id", "message_id", "conversation_id", "workflow_run_id", "workflow_id",
    "created_at", "finished_at", "form_id", "form_token", "expiration_time", "created",
})  # fmt: skip


def masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: "<v>" if k in VOLATILE and v is not None else masked(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [masked(v) for v in value]
    if isinstance(value, str) and value.startswith("chatcmpl-"):
        return "chatcmpl-<v>"
    return value


def body_of(response: httpx.Response) -> Any:
    kind = response.headers.get("content-type", "")
    if not response.content:
        return b""
    if kind.startswith("text/event-stream"):
        frames = []
        for frame in response.text.split("\n\n"):
            if frame.startswith("data: ") and frame != "data: [DONE]":
                frames.append(masked(json.loads(frame[6:])))
            elif frame:
                frames.append(frame)
        return frames
    if kind.startswith("application/json"):
        return masked(response.json())
    return response.text


@dataclass(frozen=True)
class Case:
    name: str
    endpoint: str
    path: str
    body: Any = None
    method: str = "POST"
    headers: tuple[tuple[str, str], ...] = ()


AUTH = (("Authorization", f"Bearer {KEY}"), ("Content-Type", "application/json"))
CHAT = "/v1/chat-messages"
OPENAI = "/v1/chat/completions"


def openai(content: str, **extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": content}], **extra}


CASES = [
    Case("chat blocking", "rd-chat", CHAT, {"query": "hi", "inputs": {"name": "Ann"}}),
    Case("chat streaming", "rd-chat", CHAT, {"query": "hi", "response_mode": "streaming"}),
    Case("agent blocking", "rd-agent", CHAT, {"query": "look"}),
    Case("agent streaming", "rd-agent", CHAT, {"query": "look", "response_mode": "streaming"}),
    Case("chatflow streaming", "rd-flow", CHAT, {"query": "go", "response_mode": "streaming"}),
    Case("completion blocking", "rd-completion", "/v1/completion-messages",
         {"inputs": {"query": "text"}}),
    Case("workflow blocking", "rd-workflow", "/v1/workflows/run", {"inputs": {"city": "Oslo"}}),
    Case("workflow streaming", "rd-workflow", "/v1/workflows/run",
         {"inputs": {"city": "Oslo"}, "response_mode": "streaming"}),
    Case("workflow missing input", "rd-workflow", "/v1/workflows/run", {"inputs": {}}),
    Case("route mismatch", "rd-workflow", CHAT, {"query": "hi"}),
    Case("parameters", "rd-workflow", "/v1/parameters", method="GET"),
    Case("parameters HEAD", "rd-workflow", "/v1/parameters", method="HEAD"),
    Case("CORS preflight", "rd-cors", CHAT, method="OPTIONS",
         headers=(("Origin", "https://app.example"), ("Access-Control-Request-Method", "POST"))),
    Case("CORS request", "rd-cors", CHAT, {"query": "hi"},
         headers=(("Origin", "https://app.example"),)),
    Case("bad key", "rd-chat", CHAT, {"query": "hi"}, headers=(("Authorization", "Bearer x"),)),
    Case("empty body", "rd-chat", CHAT, b""),
    Case("wrong method", "rd-chat", CHAT, method="GET"),
    Case("unknown path", "rd-chat", "/v2/nothing", {"a": 1}),
    Case("reasoning chatflow stream", "rd-think", CHAT, {"query": "q", "response_mode": "streaming"}),
    Case("reasoning chatflow blocking", "rd-think", CHAT, {"query": "q"}),
    Case("reasoning workflow stream", "rd-think-wf", "/v1/workflows/run",
         {"inputs": {}, "response_mode": "streaming"}),
    Case("paused workflow blocking", "rd-pause-wf", "/v1/workflows/run", {"inputs": {}}),
    Case("paused workflow stream", "rd-pause-wf", "/v1/workflows/run",
         {"inputs": {}, "response_mode": "streaming"}),
    Case("paused chatflow blocking", "rd-pause-flow", CHAT, {"query": "q"}),
    Case("future event stream", "rd-future", CHAT, {"query": "q", "response_mode": "streaming"}),
    Case("future event blocking", "rd-future", CHAT, {"query": "q"}),
    Case("numbers", "rd-floats", "/v1/workflows/run", {"inputs": {}}),
    Case("broken stream", "rd-broken", CHAT, {"query": "q", "response_mode": "streaming"}),
    Case("error event stream", "rd-error", CHAT, {"query": "q", "response_mode": "streaming"}),
    Case("error event blocking", "rd-error", CHAT, {"query": "q"}),
    Case("openai models", "rd-chat", "/v1/models", method="GET"),
    Case("openai blocking", "rd-chat", OPENAI, openai("hello")),
    Case("openai streaming", "rd-flow", OPENAI, openai("hello", stream=True)),
    Case("openai reasoning stream", "rd-think", OPENAI, openai("q", stream=True)),
    Case("openai reasoning blocking", "rd-think", OPENAI, openai("q")),
    Case("openai paused", "rd-pause-flow", OPENAI, openai("q")),
    Case("openai workflow", "rd-workflow", OPENAI, openai("Paris", inputs={"city": "Paris"})),
    Case("extension ping", "rd-workflow", "/extension", {"point": "ping", "params": {}}),
    Case("extension data tool", "rd-workflow", "/extension",
         {"point": "app.external_data_tool.query",
          "params": {"app_id": "x", "tool_variable": "w", "inputs": {"city": "Rome"}, "query": "?"}}),
    Case("extension paused", "rd-pause-wf", "/extension",
         {"point": "app.external_data_tool.query", "params": {"tool_variable": "w", "query": "?"}}),
    Case("moderation", "rd-chat", "/extension",
         {"point": "app.moderation.input", "params": {"app_id": "x", "inputs": {}, "query": "hi"}}),
]  # fmt: skip


def send(base: str, hook: str, case: Case, headers: dict[str, str] | None = None) -> httpx.Response:
    body = (
        case.body
        if isinstance(case.body, bytes) or case.body is None
        else json.dumps(case.body).encode()
    )
    merged = {**dict(AUTH), **dict(case.headers), **(headers or {})}
    return httpx.request(case.method, f"{base}/e/{hook}{case.path}", content=body,
                         headers=merged, timeout=60)  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_real_daemon_answers_like_the_emulator(daemon: Daemon, case: Case) -> None:
    hook = daemon.hooks[case.endpoint]
    real = send(daemon.base, hook, case)
    emulated = send(daemon.runner, hook, case)
    assert real.status_code == emulated.status_code, real.text
    assert real.headers.get("content-type") == emulated.headers.get("content-type")
    cors = [h for h in real.headers if h.lower().startswith("access-control-")]
    assert {h: real.headers[h] for h in cors} == {h: emulated.headers.get(h) for h in cors}
    streams = [(c.body.get("app_id"), c.frames, c.failure) for c in daemon.inner.calls[-3:]]
    assert body_of(real) == body_of(emulated), f"{real.text}\ninner API streams: {streams}"
    assert "Traceback" not in real.text


def test_events_leave_in_difys_order_with_go_numbers(daemon: Daemon) -> None:
    """daemon-notes §D, settled: the daemon re-encodes each chunk through a Go map (keys
    sorted, whole floats as ints); the Service API puts Dify's key order back."""
    before = len(daemon.workspace.sent)
    r = send(daemon.base, daemon.hooks["rd-floats"],
             Case("", "", "/v1/workflows/run", {"inputs": {}, "response_mode": "streaming"}))  # fmt: skip
    frames = [json.loads(f[6:]) for f in r.text.split("\n\n") if f.startswith("data: ")]
    (sent,) = daemon.workspace.sent[before:]  # the events as Dify wrote them, in Dify's order
    assert [list(f) for f in frames] == [list(e) for e in sent]
    assert [list(f["data"]) for f in frames] == [list(e["data"]) for e in sent]
    assert list(frames[0])[:3] == ["event", "workflow_run_id", "task_id"]
    outputs = frames[-1]["data"]["outputs"]
    assert outputs == {"big": 1152921504606847000, "html": "<b>&</b>", "n": 2, "x": 0.25}
    assert '"n":2,' in r.text  # 2.0 arrived as an int


@pytest.mark.parametrize("scheme", WEBHOOK_SCHEMES)
def test_webhook_schemes_through_the_real_daemon(daemon: Daemon, scheme: str) -> None:
    body = json.dumps({"text": f"hello from {scheme}", "type": "event"}).encode()
    headers = {"Content-Type": "application/json", **sign(scheme, body, time.time())}
    case = Case(scheme, f"wh-{scheme}", "/webhook", body)
    real = send(daemon.base, daemon.hooks[case.endpoint], case, headers)
    emulated = send(daemon.runner, daemon.hooks[case.endpoint], case, headers)
    assert (real.status_code, real.text) == (emulated.status_code, emulated.text)
    assert real.status_code == 200 and f"hello from {scheme}" in real.text
    forged = {**headers, **sign(scheme, body, time.time(), secret="not-the-secret-0000")}
    assert send(daemon.base, daemon.hooks[case.endpoint], case, forged).status_code == 401


def test_webhook_paused_run_says_it_waits(daemon: Daemon) -> None:
    case = Case("pause", "wh-pause", "/webhook", b'{"text": "approve?"}')
    headers = {"Content-Type": "application/json", **sign("api_key", case.body, time.time())}
    real = send(daemon.base, daemon.hooks["wh-pause"], case, headers)
    assert real.status_code == 200 and "waiting for human input" in real.text


def test_openai_sdk_reads_reasoning_content(daemon: Daemon) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=f"{daemon.base}/e/{daemon.hooks['rd-think']}/v1", api_key=KEY,
                    max_retries=0, timeout=30)  # fmt: skip
    stream = client.chat.completions.create(model="m", stream=True,
                                            messages=[{"role": "user", "content": "q"}])  # fmt: skip
    reasoning, content = "", ""
    for chunk in stream:
        if chunk.choices:
            delta = chunk.choices[0].delta
            reasoning += getattr(delta, "reasoning_content", None) or ""
            content += delta.content or ""
    assert (reasoning, content) == ("Let me think step by step.", "Forty two.")


def test_user_not_found_is_explained(daemon: Daemon) -> None:
    daemon.inner.workspace.user_not_found = True
    try:
        real = send(daemon.base, daemon.hooks["rd-chat"], CASES[0])
    finally:
        daemon.inner.workspace.user_not_found = False
    assert real.status_code == 502
    assert real.json()["code"] == "dify_user_not_found"
    assert "upgrade Dify" in real.json()["message"]


def test_inner_api_saw_what_dify_would(daemon: Daemon) -> None:
    """The daemon's calls to Dify: endpoint sessions have an empty user id; settings decrypt."""
    invokes = [c.body for c in daemon.inner.calls if c.path == "/inner/api/invoke/app"]
    assert invokes and {b["user_id"] for b in invokes} == {""}
    assert all(b["response_mode"] == "streaming" for b in invokes)  # the gateway always streams
    assert {"app_id", "inputs", "query", "response_mode", "conversation_id", "user", "tenant_id",
            "user_id", "type"} <= set(invokes[0])  # fmt: skip
    opts = {c.body.get("opt") for c in daemon.inner.calls if c.path.endswith("invoke/encrypt")}
    assert {"encrypt", "decrypt"} <= opts


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/e/nohook000000000/v1/models"), ("PATCH", "/e/nohook000000000/v1/models"),
     ("GET", "/nothing")],
)  # fmt: skip
def test_daemon_own_errors_match_the_runner(daemon: Daemon, method: str, path: str) -> None:
    real = httpx.request(method, f"{daemon.base}{path}", timeout=30)
    emulated = httpx.request(method, f"{daemon.runner}{path}", timeout=30)
    assert (real.status_code, real.headers["content-type"], real.content) == (
        emulated.status_code, emulated.headers["content-type"], emulated.content,
    )  # fmt: skip


def test_the_plugin_sees_the_same_request_under_both_daemons(daemon: Daemon) -> None:
    """copyRequest (protocol.md §4.2) as the real daemon does it vs ``devkit.wire``.

    The echo workflow returns the webhook's request document (headers, query, method, path,
    body) that the plugin parsed from the raw request each daemon handed it.
    """
    hook = daemon.hooks["wh-echo"]
    target = f"/e/{hook}/webhook?b=2&a=1%20x&a=0&empty="
    docs = []
    for base in (daemon.base, daemon.runner):
        host = base.removeprefix("http://")
        headers = {
            "Authorization": "Bearer hook-key-0001", "Content-Type": "application/json",
            "X-Custom-Thing": "v1", "x-lower-case": "v2", "X-Forwarded-For": "203.0.113.9",
            "X-Real-Ip": "203.0.113.9", "User-Agent": "probe/1.0",
            "Dify-Hook-Url": f"http://{host}{target}", "X-Forwarded-Proto": "http",  # nginx
        }  # fmt: skip
        r = httpx.post(f"{base}{target}", content=b'{"k": [1, 2.0, "x"]}', headers=headers,
                       timeout=30)  # fmt: skip
        assert r.status_code == 200, r.text
        docs.append(json.loads(r.json()["doc"].replace(host, "<host>")))
    real, emulated = docs
    # Without nginx the caller's Connection header reaches the plugin; Dify's nginx clears it
    # (proxy_set_header Connection ""), and the runner plays nginx.
    assert real["headers"].pop("connection") == "keep-alive"
    assert list(real["headers"].items()) == list(emulated["headers"].items()), (
        f"real: {list(real['headers'].items())}\nemulated: {list(emulated['headers'].items())}"
    )
    assert real == emulated
    assert "x-forwarded-for" not in real["headers"] and "x-real-ip" not in real["headers"]
    assert real["headers"]["dify-hook-id"] == hook
    assert real["query"] == emulated["query"] and real["body"] == {"k": [1, 2.0, "x"]}


# -- two-way webhooks: ack now, finish in a continuation, reply on the platform ----------------


def delivery(platform: str, text: str) -> tuple[bytes, dict[str, str]]:
    """(body, headers) of one delivery of ``text``, signed as the platform signs it."""
    if platform == "callback":
        body: dict[str, Any] = {"query": text, "user": "u-1"}
        extra: dict[str, str] = {}
    else:
        body, extra = payload(platform, text)
    raw = json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **sign(TWO_WAY[platform], raw, time.time()),
               **extra}  # fmt: skip
    return raw, headers


def deliver(base: str, hook: str, raw: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{base}/e/{hook}/webhook", content=raw, headers=headers, timeout=30)


def runs(daemon: Daemon, text: str) -> list[dict[str, Any]]:
    """The app runs Dify's inner API (the stand-in) received for ``text``."""
    return [c.body for c in daemon.inner.calls
            if c.path == "/inner/api/invoke/app" and text in str(c.body.get("query"))]  # fmt: skip


def decrypts(daemon: Daemon, endpoint: str) -> int:
    """How many requests the daemon served on ``endpoint`` (it decrypts the settings for each)."""
    identity = daemon.endpoint_ids[endpoint]
    return sum(1 for c in daemon.inner.calls if c.path == "/inner/api/invoke/encrypt"
               and c.body.get("opt") == "decrypt" and c.body.get("identity") == identity)  # fmt: skip


def ack_shape(platform: str, response: httpx.Response) -> bool:
    if platform == "slack":
        return response.status_code == 200 and response.content == b""
    if platform == "discord":  # DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE: "thinking…"
        return response.status_code == 200 and response.json() == {"type": 5}
    if platform in ("telegram", "line", "whatsapp"):
        return response.status_code == 200
    body = response.json()
    return response.status_code == 202 and body["status"] == "accepted" and bool(body["id"])


@pytest.fixture
def two_way(daemon: Daemon) -> Iterator[Daemon]:
    daemon.fakes.reset()
    assert daemon.bridge.fakes is not None
    daemon.bridge.fakes.reset()
    yield daemon
    daemon.workspace.run.open()  # never leave a run waiting
    daemon.workspace.fetch.open()


@pytest.mark.parametrize("platform", list(TWO_WAY))
def test_two_way_acks_at_once_then_replies_once(two_way: Daemon, platform: str) -> None:
    """The platform's ack while the app still runs; the answer arrives later, from one run.

    The app waits at the inner-API stand-in until the ack has come back, so the ack cannot
    have waited for it (an inline run would block until the gate opens).
    """
    daemon, gate = two_way, two_way.workspace.run
    endpoint, text = f"tw-{platform}", f"what is up {uuid.uuid4().hex[:8]}"
    hook = daemon.hooks[endpoint]
    raw, headers = delivery(platform, text)
    served = decrypts(daemon, endpoint)
    gate.close()
    try:
        ack = deliver(daemon.base, hook, raw, headers)
        assert gate.reached.wait(20), "the continuation never ran the app"
        assert daemon.fakes.calls_for(platform) == []  # no reply before the app could finish
    finally:
        gate.open()
    assert ack_shape(platform, ack), (ack.status_code, ack.text)
    # the delivery and the plugin's self-call to 127.0.0.1:$SERVER_PORT/e/<hook>/_continue
    assert decrypts(daemon, endpoint) == served + 2
    emulated = deliver(daemon.runner, hook, raw, headers)
    assert (ack.status_code, ack.headers.get("content-type"), ack.content) == (
        emulated.status_code, emulated.headers.get("content-type"), emulated.content,
    )  # fmt: skip
    (call,) = daemon.fakes.wait_for(platform, 1, timeout=30)
    assert f"The answer to: {text}" in call.text
    assert_reply_target(platform, call, TOKENS)
    assert daemon.bridge.fakes is not None
    (emulated_call,) = daemon.bridge.fakes.wait_for(platform, 1, timeout=30)
    assert (call.path, masked(call.json)) == (emulated_call.path, masked(emulated_call.json))
    (run,) = runs(daemon, text)  # exactly one run at Dify
    assert run["app_id"] == "rd-slow" and run["user_id"] == ""
    assert "Traceback" not in ack.text


@pytest.mark.parametrize("platform", ["slack", "github"])
def test_two_way_retries_replay_the_ack_without_a_second_run(
    two_way: Daemon, platform: str
) -> None:
    daemon, gate = two_way, two_way.workspace.run
    hook, text = daemon.hooks[f"tw-{platform}"], f"retried {uuid.uuid4().hex[:8]}"
    raw, headers = delivery(platform, text)
    gate.close()
    try:
        first = deliver(daemon.base, hook, raw, headers)
        assert gate.reached.wait(20)
        during = deliver(daemon.base, hook, raw, headers)  # the run is still going
    finally:
        gate.open()
    assert ack_shape(platform, first) and "Idempotent-Replay" not in first.headers
    assert (during.status_code, during.content) == (first.status_code, first.content)
    assert during.headers.get("Idempotent-Replay") == "true"
    daemon.fakes.wait_for(platform, 1, timeout=30)
    after = deliver(daemon.base, hook, raw, headers)
    assert (after.status_code, after.content, after.headers.get("Idempotent-Replay")) == (
        first.status_code, first.content, "true",
    )  # fmt: skip
    time.sleep(0.5)  # a second run or reply, if there were one, would have started by now
    assert len(runs(daemon, text)) == 1
    assert len(daemon.fakes.calls_for(platform)) == 1


def test_forged_continuations_are_refused_like_the_emulator(two_way: Daemon) -> None:
    """``POST /_continue`` through the real daemon: unsigned, forged, expired → 401, no run;
    a genuine one runs once and its replay is refused."""
    daemon = two_way
    hook, text = daemon.hooks["tw-slack"], f"continued {uuid.uuid4().hex[:8]}"
    raw, _ = delivery("slack", text)
    document = {"body": json.loads(raw), "headers": {}, "query": {}, "method": "POST",
                "path": "/webhook"}  # fmt: skip
    body = json.dumps({"v": 1, "delivery": f"slack:Ev{uuid.uuid4().hex[:10].upper()}",
                       "channel": "slack",
                       "target": {"channel": "slack", "fields": {"channel": "D0DEMO"}},
                       "document": document}).encode()  # fmt: skip
    nonce = continuation.new_nonce()
    forged = continuation.sign("not-the-api-key", body, nonce)
    expired = continuation.sign(KEY_OF_HOOKS, body, nonce, now=time.time() - 3600)
    for header in (None, "garbage", forged, expired):
        extra = {continuation.HEADER: header} if header else {}
        answers = [
            httpx.post(f"{base}/e/{hook}{continuation.ROUTE}", content=body, headers=extra,
                       timeout=30)
            for base in (daemon.base, daemon.runner)
        ]  # fmt: skip
        real, emulated = answers
        assert real.status_code == 401, real.text
        assert (real.headers.get("content-type"), real.content) == (
            emulated.headers.get("content-type"), emulated.content,
        )  # fmt: skip
        assert real.json()["code"] == "unauthorized" and "Traceback" not in real.text
    assert runs(daemon, text) == []
    genuine = {continuation.HEADER: continuation.sign(KEY_OF_HOOKS, body, nonce)}
    url = f"{daemon.base}/e/{hook}{continuation.ROUTE}"
    first = httpx.post(url, content=body, headers=genuine, timeout=30)
    assert first.status_code == 200 and first.text.startswith("started\n"), first.text
    assert first.text.endswith("succeeded replied\n")
    replay = httpx.post(url, content=body, headers=genuine, timeout=30)
    assert replay.status_code == 401 and "already used" in replay.json()["message"]
    (call,) = daemon.fakes.wait_for("slack", 1, timeout=30)
    assert f"The answer to: {text}" in call.text
    assert len(runs(daemon, text)) == 1


def test_another_session_meanwhile_does_not_cancel_the_continuation(two_way: Daemon) -> None:
    """Daemons before 0.6.9 share one backwards-invocation client whose context each new
    session replaces (daemon-notes §A(1)): a request that opens and closes its session while
    the continuation is between its app lookup and its app run must not cancel the run."""
    daemon, lookup = two_way, two_way.workspace.fetch
    text = f"meanwhile {uuid.uuid4().hex[:8]}"
    raw, headers = delivery("slack", text)
    lookup.close()
    try:
        ack = deliver(daemon.base, daemon.hooks["tw-fetch"], raw, headers)
        assert ack.status_code == 200
        assert lookup.reached.wait(20), "the continuation never looked the app up"
        other = send(daemon.base, daemon.hooks["rd-chat"], CASES[0])  # a session of its own
        assert other.status_code == 200 and "Hello Ann" in other.text
    finally:
        lookup.open()
    (call,) = daemon.fakes.wait_for("slack", 1, timeout=30)
    assert call.text.startswith(f"The answer to: {text}"), call.text
    assert len(runs(daemon, text)) == 1


@pytest.mark.parametrize("app", ["rd-error", "rd-broken"])
def test_two_way_app_failure_is_a_plain_reply_like_the_emulator(two_way: Daemon, app: str) -> None:
    """An error event, or a stream the daemon reports broken (``read app failed``)."""
    daemon, hook = two_way, two_way.hooks[f"tw-{app}"]
    raw, headers = delivery("slack", f"fail {uuid.uuid4().hex[:8]}")
    replies = []
    for base, fakes in ((daemon.base, daemon.fakes), (daemon.runner, daemon.bridge.fakes)):
        assert fakes is not None
        assert deliver(base, hook, raw, headers).status_code == 200
        (call,) = fakes.wait_for("slack", 1, timeout=30)
        replies.append(call.json)
    real, emulated = replies
    assert real["text"].startswith(FAILED_MESSAGE) and "Traceback" not in real["text"]
    assert masked(real) == masked(emulated)


def test_unreachable_self_url_runs_inline_like_the_emulator(two_way: Daemon) -> None:
    daemon, hook = two_way, two_way.hooks["tw-fallback"]
    text = f"fallback {uuid.uuid4().hex[:8]}"
    raw, headers = delivery("github", text)
    real = deliver(daemon.base, hook, raw, headers)
    emulated = deliver(daemon.runner, hook, raw, headers)
    assert real.status_code == 200 and real.json()["answer"] == f"The answer to: {text}"
    assert masked(real.json()) == masked(emulated.json())
    (call,) = daemon.fakes.wait_for("github", 1, timeout=30)
    assert f"The answer to: {text}" in call.text
    assert len(runs(daemon, text)) == 1
    page = httpx.get(f"{daemon_url(daemon, 'tw-fallback')}/",
                     headers={"Authorization": f"Bearer {KEY_OF_HOOKS}"}, timeout=30)  # fmt: skip
    assert "fell back to running inline" in page.text and "self_url is unreachable" in page.text


def test_two_way_never_fell_back_inline(two_way: Daemon) -> None:
    """The default self URL (``http://127.0.0.1:$SERVER_PORT/e/<hook>``) reached the daemon."""
    for endpoint in ("tw-slack", "tw-github", "tw-fetch"):
        page = httpx.get(f"{daemon_url(two_way, endpoint)}/",
                         headers={"Authorization": f"Bearer {KEY_OF_HOOKS}"}, timeout=30)  # fmt: skip
        assert page.status_code == 200, page.text
        assert "fell back" not in page.text


def test_the_daemon_keeps_a_callers_dify_hook_url(daemon: Daemon) -> None:
    """A self-call carries the public URL forward in ``Dify-Hook-Url``: the daemon keeps it
    (it builds one from ``Host`` only when the caller sent none)."""
    hook = daemon.hooks["wh-echo"]
    public = f"https://dify.example.com/e/{hook}/webhook"
    r = httpx.post(f"{daemon.base}/e/{hook}/webhook", content=b"{}", timeout=30, headers={
        "Authorization": f"Bearer {KEY_OF_HOOKS}", "Content-Type": "application/json",
        "Dify-Hook-Url": public})  # fmt: skip
    assert r.status_code == 200, r.text
    assert json.loads(r.json()["doc"])["headers"]["dify-hook-url"] == public


def test_the_page_comes_gzip_coded_through_both_daemons(daemon: Daemon) -> None:
    """The daemon relays the plugin's ``Content-Encoding``, ``Vary`` and ``Content-Length``
    as the plugin set them, and the client inflates the page the runner sends alike."""
    hook, auth = daemon.hooks["rd-chat"], {"Authorization": f"Bearer {KEY}"}
    for base in (daemon.base, daemon.runner):
        coded = httpx.get(f"{base}/e/{hook}/", headers=auth, timeout=30)
        plain = httpx.get(f"{base}/e/{hook}/", headers={**auth, "Accept-Encoding": "identity"},
                          timeout=30)  # fmt: skip
        assert coded.status_code == plain.status_code == 200, base
        assert coded.headers.get("content-encoding") == "gzip", base
        assert "content-encoding" not in plain.headers, base
        assert coded.headers["vary"] == plain.headers["vary"] == "Accept-Encoding", base
        wire, whole = int(coded.headers["content-length"]), int(plain.headers["content-length"])
        assert wire * 3 < whole and whole == len(plain.content), base
        assert coded.text == plain.text and f"/e/{hook}/v1/chat-messages" in plain.text, base


def daemon_url(daemon: Daemon, endpoint: str) -> str:
    return f"{daemon.base}/e/{daemon.hooks[endpoint]}"
