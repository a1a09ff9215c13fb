"""Two-way webhooks end to end (SPEC §6.1): the real plugin process behind the emulated daemon
and its loopback listener (``SERVER_PORT``), deliveries signed as each platform signs them, an
app slower than the platform's budget, and loopback fakes of the platforms' APIs.

"Within 1 s" is asserted without the clock: the app waits on an event that the test releases
only after the ack has arrived, so the ack came before the app could finish.
"""

import json
import threading
import time

import pytest
from reply_targets import assert_reply_target
from signers import sign

from bridge.protocols import continuation
from bridge.replies.base import FAILED_MESSAGE
from devkit.daemon import PluginProcess
from devkit.deliver import payload
from devkit.fakes import FakePlatforms, retry_after
from devkit.wire import daemon_request_bytes
from devkit.workspace import App, Script, Workspace, inner_api_error

API_KEY = "two-way-key-0001"
SECRET = "whsec-test-secret-0123456789"
TOKENS = {
    "slack": "xoxb-test-token",
    "telegram": "123456:ABCdefGHIjklMNOpqrSTUvwxYZ0123",
    "line": "line-channel-access-token",
    "whatsapp": "whatsapp-access-token",
    "github": "ghp_testtoken",
    "gitlab": "glpat-testtoken",
    "callback": "whsec_" + "dGhlLWNhbGxiYWNrLXNpZ25pbmcta2V5LTMyYnl0ZXM=",
}
SCHEME = {
    "slack": "slack", "discord": "discord", "telegram": "telegram", "line": "line",
    "whatsapp": "meta", "github": "github", "gitlab": "gitlab", "callback": "api_key",
}  # fmt: skip
PLATFORMS = tuple(SCHEME)
ANSWER = "The answer to: {query}"


class GatedWorkspace(Workspace):
    """Every app run waits until the test releases it (an app slower than any budget)."""

    def __init__(self, apps):
        super().__init__(apps)
        self.release = threading.Event()
        self.waiting = threading.Event()

    def run_app(self, request, *, user_id=""):
        self.waiting.set()
        if not self.release.wait(60):
            raise AssertionError("the test never released the app")
        yield from super().run_app(request, user_id=user_id)


def make_workspace(script=None):
    return GatedWorkspace([App("chat-app", "chat", "Chat", script=script or Script(answer=ANSWER))])


@pytest.fixture(scope="module")
def fakes():
    with FakePlatforms() as platforms:
        yield platforms


@pytest.fixture(scope="module")
def process(fakes):
    with PluginProcess(make_workspace(), env=environment(fakes)) as proc:
        yield proc


def environment(fakes, **extra):
    """Platform API bases at the fakes; the callback's reply_url host allowed by the operator."""
    host = fakes.url.removeprefix("http://")
    return {**fakes.environment(), "APP_BRIDGE_REPLY_ALLOWED_HOSTS": host, **extra}


@pytest.fixture
def plugin(process, fakes):
    assert process.running
    fakes.reset()
    process.workspace = make_workspace()
    process.dropped.clear()
    return process


def settings_for(platform, **extra):
    from signers import SECRETS

    values = {
        "api_key": API_KEY,
        "app": {"app_id": "chat-app"},
        "webhook_verification": SCHEME[platform],
        "webhook_secret": SECRETS.get(SCHEME[platform], SECRET) if platform != "callback" else "",
        "webhook_reply": platform,
        "reply_token": TOKENS.get(platform, ""),
    }
    if platform == "callback":
        values["reply_url"] = "http://127.0.0.1:9/unused"
    return {**values, **extra}


def hook_for(platform):
    return f"{platform}{'0' * 16}"[:16]


def delivery(platform, text="hello bridge"):
    """(body bytes, headers) of one delivery, signed as the platform signs it."""
    if platform == "callback":
        body, extra = {"query": text, "user": "u-1"}, {}
    else:
        body, extra = payload(platform, text)
    raw = json.dumps(body).encode()
    secret = API_KEY if platform == "callback" else None
    headers = {"Content-Type": "application/json", **sign(SCHEME[platform], raw, time.time(),
                                                          secret=secret), **extra}  # fmt: skip
    return raw, headers


def post(process, platform, raw, headers, settings):
    request = daemon_request_bytes(
        "POST", "/webhook", headers=headers, body=raw, hook_id=hook_for(platform)
    )
    return process.send(request, settings, endpoint_id=f"ep-{platform}").collect()


def callback_fakes(fakes, settings):
    settings["reply_url"] = fakes.base("callback") + "/results"
    return settings


def expected_ack(platform, response):
    if platform == "slack":
        return response.status == 200 and response.body == b""
    if platform == "discord":
        return response.status == 200 and response.json() == {"type": 5}
    if platform in ("telegram", "line", "whatsapp"):
        return response.status == 200
    body = response.json()
    return response.status == 202 and body["status"] == "accepted" and body["id"]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_ack_first_then_one_run_then_the_reply(plugin, fakes, platform):
    settings = (
        callback_fakes(fakes, settings_for(platform))
        if platform == "callback"
        else (settings_for(platform))
    )
    raw, headers = delivery(platform, "what is up")
    ack = post(plugin, platform, raw, headers, settings)
    # the app is still waiting for the test: the ack came before it could finish
    assert not plugin.workspace.release.is_set()
    assert expected_ack(platform, ack), (ack.status, ack.body)
    assert "Traceback" not in ack.text
    assert plugin.workspace.waiting.wait(20), "the continuation never ran the app"
    plugin.workspace.release.set()
    (call,) = fakes.wait_for(platform, 1, timeout=20)
    assert "The answer to: what is up" in call.text
    assert_reply_target(platform, call, TOKENS)
    assert len(plugin.workspace.invocations) == 1  # exactly once
    (run,) = plugin.workspace.invocations
    assert run.query == "what is up"
    assert plugin.dropped == []  # the run lived in a live session


@pytest.mark.parametrize("platform", ["slack", "github"])
def test_retries_during_and_after_the_run_replay_the_ack(plugin, fakes, platform):
    settings = settings_for(platform)
    raw, headers = delivery(platform)
    first = post(plugin, platform, raw, headers, settings)
    assert plugin.workspace.waiting.wait(20)
    during = post(plugin, platform, raw, headers, settings)  # the run is still going
    assert (during.status, during.body) == (first.status, first.body)
    assert during.header("Idempotent-Replay") == "true"
    plugin.workspace.release.set()
    fakes.wait_for(platform, 1, timeout=20)
    after = post(plugin, platform, raw, headers, settings)
    assert (after.status, after.body, after.header("Idempotent-Replay")) == (
        first.status, first.body, "true",
    )  # fmt: skip
    time.sleep(0.2)  # a second run, if any, would have been invoked by now
    assert len(plugin.workspace.invocations) == 1
    assert len(fakes.calls_for(platform)) == 1


def continue_url(process, platform):
    return f"{process.base_url}/e/{hook_for(platform)}{continuation.ROUTE}"


def test_forged_expired_and_replayed_continuations_are_refused(plugin, fakes):
    import httpx

    settings = settings_for("slack")
    raw, headers = delivery("slack")
    post(plugin, "slack", raw, headers, settings)  # registers the hook; its run waits
    body_doc = {"body": json.loads(raw), "headers": {}, "query": {}, "method": "POST",
                "path": "/webhook"}  # fmt: skip
    body = json.dumps({"v": 1, "delivery": "slack:EvFORGED", "channel": "slack",
                       "target": {"channel": "slack", "fields": {"channel": "D0DEMO"}},
                       "document": body_doc}).encode()  # fmt: skip
    url = continue_url(plugin, "slack")
    nonce = continuation.new_nonce()
    forged = continuation.sign("not-the-api-key", body, nonce)
    expired = continuation.sign(API_KEY, body, nonce, now=time.time() - 3600)
    for header in (None, "garbage", forged, expired):
        extra = {continuation.HEADER: header} if header else {}
        r = httpx.post(url, content=body, headers=extra, timeout=10)
        assert r.status_code == 401, r.text
        assert r.json()["code"] == "unauthorized" and "Traceback" not in r.text
    assert plugin.workspace.invocations == []
    plugin.workspace.release.set()
    genuine = continuation.sign(API_KEY, body, nonce)
    first = httpx.post(url, content=body, headers={continuation.HEADER: genuine}, timeout=30)
    assert first.status_code == 200  # a genuine continuation runs (it is the test's own)
    assert first.text.startswith("started\n")
    replay = httpx.post(url, content=body, headers={continuation.HEADER: genuine}, timeout=10)
    assert replay.status_code == 401
    fakes.wait_for("slack", 2, timeout=20)
    assert len(plugin.workspace.invocations) == 2  # the delivery's own run and the test's one


def test_platform_429_then_200_gives_one_reply(plugin, fakes):
    fakes.script("slack", retry_after(1))
    raw, headers = delivery("slack", "rate limited")
    post(plugin, "slack", raw, headers, settings_for("slack"))
    plugin.workspace.release.set()
    calls = fakes.wait_for("slack", 2, timeout=20)
    assert [c.status for c in calls] == [429, 200]
    assert calls[0].json == calls[1].json  # the same message, delivered once
    time.sleep(0.2)
    assert len(fakes.calls_for("slack")) == 2


def test_app_failure_becomes_a_plain_error_reply(plugin, fakes):
    failing = Script(raise_before=inner_api_error("[models] Error: quota exceeded"))
    plugin.workspace = make_workspace(failing)
    raw, headers = delivery("telegram")
    ack = post(plugin, "telegram", raw, headers, settings_for("telegram"))
    assert ack.status == 200
    plugin.workspace.release.set()
    (call,) = fakes.wait_for("telegram", 1, timeout=20)
    assert call.text.startswith(FAILED_MESSAGE)
    assert "quota exceeded" in call.text
    assert "Traceback" not in call.text and "invoke app failed" not in call.text


@pytest.mark.parametrize(("platform", "limit"), [("slack", 4000), ("discord", 2000),
                                                 ("telegram", 4096)])  # fmt: skip
def test_long_answers_are_split_within_the_platforms_limit(plugin, fakes, platform, limit):
    long = " ".join(["word"] * (limit // 2))  # about 2.5 limits of text
    plugin.workspace = make_workspace(Script(answer=long, chunks=[long]))
    raw, headers = delivery(platform)
    post(plugin, platform, raw, headers, settings_for(platform))
    plugin.workspace.release.set()
    calls = fakes.wait_for(platform, 3, timeout=20)
    assert len(calls) >= 3 and all(len(c.text) <= limit for c in calls)
    assert "".join(c.text for c in calls).replace("\n", "").replace(" ", "") == long.replace(
        " ", ""
    )


def test_inline_run_mode_answers_in_the_response(plugin, fakes):
    plugin.workspace.release.set()
    raw, headers = delivery("slack", "inline please")
    r = post(plugin, "slack", raw, headers, settings_for("slack", run_mode="inline"))
    assert r.status == 200 and r.json()["answer"] == "The answer to: inline please"
    (call,) = fakes.wait_for("slack", 1, timeout=20)
    assert "The answer to: inline please" in call.text


def test_unreachable_self_url_falls_back_inline_and_diagnostics_say_why(plugin, fakes):
    plugin.workspace.release.set()
    settings = settings_for("github", self_url="http://127.0.0.1:9/e/nowhere")
    raw, headers = delivery("github", "fallback")
    r = post(plugin, "github", raw, headers, settings)
    assert r.status == 200 and r.json()["answer"] == "The answer to: fallback"
    (call,) = fakes.wait_for("github", 1, timeout=20)
    assert "The answer to: fallback" in call.text
    page = plugin.request(
        daemon_request_bytes(
            "GET", "/", headers={"Authorization": f"Bearer {API_KEY}"}, hook_id=hook_for("github")
        ),
        settings,
        endpoint_id="ep-github",
    )
    assert "fell back to running inline" in page.text and "self_url is unreachable" in page.text


def test_skipped_events_are_acked_without_running(plugin, fakes):
    body, _ = payload("slack", "from a bot")
    body["event"]["bot_id"] = "B0BOT"
    raw = json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **sign("slack", raw, time.time())}
    r = post(plugin, "slack", raw, headers, settings_for("slack"))
    assert r.status == 200
    time.sleep(0.2)
    assert plugin.workspace.invocations == [] and fakes.calls_for("slack") == []


def test_beyond_the_concurrency_bound_senders_get_503_with_retry_after(fakes):
    with PluginProcess(
        make_workspace(), env=environment(fakes, APP_BRIDGE_MAX_DEFERRED="1")
    ) as proc:
        fakes.reset()
        raw, headers = delivery("slack", "first")
        first = post(proc, "slack", raw, headers, settings_for("slack"))
        assert first.status == 200
        raw2, headers2 = delivery("slack", "second")
        busy = post(proc, "slack", raw2, headers2, settings_for("slack"))
        assert busy.status == 503 and busy.header("Retry-After")
        assert busy.json()["code"] == "too_many_deferred_runs"
        proc.workspace.release.set()
        fakes.wait_for("slack", 1, timeout=20)
        assert len(proc.workspace.invocations) == 1
