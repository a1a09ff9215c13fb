"""Reply channels' ``send()`` against the loopback fake platform APIs (devkit.fakes).

Real HTTP over loopback through bridge.transport.outbound (retries, SSRF guard); only the sleep between
retries is injected (recorded instead of waited) and the API bases point at the fakes, as
``APP_BRIDGE_<PLATFORM>_API`` would.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator

import pytest
from standardwebhooks.webhooks import Webhook

from bridge import replies
from bridge.replies import Credentials, Outcome, ReplyFailed, Target
from bridge.replies.base import FAILED_MESSAGE, OWN_MARKER, PAUSED_MESSAGE
from bridge.replies.callback import Callback
from bridge.replies.discord import Discord
from bridge.replies.github import GitHub
from bridge.replies.gitlab import GitLab
from bridge.replies.http import Http, environment_bases, host_port, reply_allowed_hosts
from bridge.replies.line import REPLY_WINDOW, Line
from bridge.replies.slack import Slack
from bridge.replies.telegram import Telegram
from bridge.replies.text import units
from bridge.replies.whatsapp import GRAPH_VERSION, WhatsApp
from devkit.fakes import FakePlatforms, Response, retry_after, server_error

TELEGRAM_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw-fake"
TOKEN = "xoxb-test-token-0001"
WH_SECRET = "whsec_" + base64.b64encode(b"callback-test-key-of-32-bytes!!!").decode()
NOW = 1_750_000_000.0

TARGETS = {
    "slack": {"channel": "C0123", "thread_ts": "1700000000.000100"},
    "discord": {"application_id": "1100000000000000001", "token": "aW50ZXJhY3Rpb24.tok-en_1"},
    "telegram": {"chat_id": "-100123", "message_id": 77},
    "line": {"reply_token": "rtok0001", "to": "U" + "a" * 32, "received_at": NOW - 1},
    "whatsapp": {
        "phone_number_id": "100000000000001",
        "to": "15551234567",
        "message_id": "wamid.X",
    },
    "github": {"repo": "octo/hello", "number": 12},
    "gitlab": {"project_id": 5, "kind": "merge_requests", "iid": 3},
}
TOKENS = {"telegram": TELEGRAM_TOKEN, "discord": ""}
LIMITS = {"slack": 4000, "discord": 2000, "telegram": 4096, "line": 5000, "whatsapp": 4096}
EXPECTED = {
    "slack": ("POST", "/chat.postMessage"),
    "discord": (
        "PATCH",
        "/webhooks/1100000000000000001/aW50ZXJhY3Rpb24.tok-en_1/messages/@original",
    ),
    "telegram": ("POST", f"/bot{TELEGRAM_TOKEN}/sendMessage"),
    "line": ("POST", "/v2/bot/message/reply"),
    "whatsapp": ("POST", f"/{GRAPH_VERSION}/100000000000001/messages"),
    "github": ("POST", "/repos/octo/hello/issues/12/comments"),
    "gitlab": ("POST", "/projects/5/merge_requests/3/notes"),
}
CLASSES = {
    "slack": Slack,
    "discord": Discord,
    "telegram": Telegram,
    "line": Line,
    "whatsapp": WhatsApp,
    "github": GitHub,
    "gitlab": GitLab,
}


@pytest.fixture
def fakes() -> Iterator[FakePlatforms]:
    with FakePlatforms() as running:
        yield running


@pytest.fixture
def sleeps() -> list[float]:
    return []


def make(name: str, fakes: FakePlatforms, sleeps: list[float]):
    bases = {p: fakes.base(p) for p in CLASSES}
    return CLASSES[name](Http(sleep=sleeps.append, bases=bases, clock=lambda: NOW))


def answer(size: int) -> str:
    """Markdown-free paragraphs of words, ``size`` characters or so."""
    words = [f"word{i}" for i in range(size // 6)]
    lines = [" ".join(words[i : i + 12]) for i in range(0, len(words), 12)]
    return "\n\n".join("\n".join(lines[i : i + 5]) for i in range(0, len(lines), 5))


def ok(text: str, delivery: str = "d-1") -> Outcome:
    return Outcome(delivery, "succeeded", text, None, "conv-1", None)


def creds(name: str) -> Credentials:
    return Credentials(TOKENS.get(name, TOKEN), "")


def words_of(text: str) -> list[str]:
    return [w for w in text.replace(OWN_MARKER, " ").split() if w != "…"]


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_reply_reaches_the_platform_path_with_credential_and_target(name, fakes, sleeps):
    channel = make(name, fakes, sleeps)
    channel.send(Target(name, TARGETS[name]), ok("Hello from the app"), creds(name))
    [call] = fakes.calls_for(name)
    assert (call.method, call.path) == EXPECTED[name]
    assert "Hello from the app" in call.text
    headers = call.headers
    if name in ("slack", "line", "whatsapp", "github"):
        assert headers["authorization"] == f"Bearer {TOKEN}"
    if name == "gitlab":
        assert headers["private-token"] == TOKEN
    if name == "github":
        assert headers["accept"] == "application/vnd.github+json"
        assert headers["x-github-api-version"] == "2022-11-28"
        assert call.json["body"].endswith(OWN_MARKER)
    if name == "slack":
        assert call.json["channel"] == "C0123"
        assert call.json["thread_ts"] == "1700000000.000100"
    if name == "telegram":
        assert call.json["chat_id"] == -100123
        assert call.json["reply_parameters"]["message_id"] == 77
    if name == "line":
        assert call.json["replyToken"] == "rtok0001"
    if name == "whatsapp":
        assert call.json["to"] == "15551234567"
        assert call.json["messaging_product"] == "whatsapp"
        assert call.json["context"] == {"message_id": "wamid.X"}
    if name == "discord":
        assert call.json["allowed_mentions"] == {"parse": []}
        assert "authorization" not in headers
    assert sleeps == []


@pytest.mark.parametrize("name", sorted(LIMITS))
def test_long_answers_are_split_within_the_limit_and_nothing_is_lost(name, fakes, sleeps):
    text = answer(LIMITS[name] * 2 + 500)
    channel = make(name, fakes, sleeps)
    channel.send(Target(name, TARGETS[name]), ok(text), creds(name))
    calls = fakes.calls_for(name)
    if name == "line":  # several messages in one call
        [call] = calls
        parts = [m["text"] for m in call.json["messages"]]
    else:
        parts = [c.text for c in calls]
    least = -(-units(text) // LIMITS[name])
    assert least >= 3 and least <= len(parts) <= least + 1  # paragraph cuts waste little
    assert all(units(p) <= LIMITS[name] for p in parts)
    assert words_of(" ".join(parts)) == words_of(text)
    if name == "discord":
        assert [c.method for c in calls] == ["PATCH"] + ["POST"] * (len(calls) - 1)
        assert calls[1].path == "/webhooks/1100000000000000001/aW50ZXJhY3Rpb24.tok-en_1"
    if name == "telegram":  # only the first part replies to the message
        assert "reply_parameters" in calls[0].json
        assert all("reply_parameters" not in c.json for c in calls[1:])
    if name == "slack":
        assert {c.json["thread_ts"] for c in calls} == {"1700000000.000100"}


def test_rate_limit_then_success_is_one_reply_after_retry_after(fakes, sleeps):
    fakes.script("slack", retry_after(1))
    make("slack", fakes, sleeps).send(Target("slack", TARGETS["slack"]), ok("hi"), creds("slack"))
    calls = fakes.calls_for("slack")
    assert [c.status for c in calls] == [429, 200]
    assert calls[0].json == calls[1].json
    assert sleeps == [1.0]


@pytest.mark.parametrize("name", ["slack", "discord", "github"])
def test_server_errors_are_retried_a_bounded_number_of_times(name, fakes, sleeps):
    fakes.script(name, *[server_error(503)] * 10)
    channel = make(name, fakes, sleeps)
    with pytest.raises(ReplyFailed) as failed:
        channel.send(Target(name, TARGETS[name]), ok("hi"), creds(name))
    assert len(fakes.calls_for(name)) == 4
    assert len(sleeps) == 3
    assert "503" in str(failed.value)


def test_long_retry_after_is_not_waited_for(fakes, sleeps):
    fakes.script("telegram", retry_after(3600))
    with pytest.raises(ReplyFailed, match="retry after"):
        make("telegram", fakes, sleeps).send(
            Target("telegram", TARGETS["telegram"]), ok("hi"), creds("telegram")
        )
    assert len(fakes.calls_for("telegram")) == 1
    assert sleeps == []


def test_slack_ok_false_with_http_200_is_a_failure(fakes, sleeps):
    fakes.script("slack", Response(200, {"ok": False, "error": "channel_not_found"}))
    with pytest.raises(ReplyFailed, match="channel_not_found"):
        make("slack", fakes, sleeps).send(
            Target("slack", TARGETS["slack"]), ok("hi"), creds("slack")
        )
    assert len(fakes.calls_for("slack")) == 1


def test_slack_without_a_valid_token_is_refused_by_the_fake_like_slack(fakes, sleeps):
    channel = make("slack", fakes, sleeps)
    with pytest.raises(ReplyFailed, match="reply_token"):
        channel.send(Target("slack", TARGETS["slack"]), ok("hi"), Credentials("", ""))
    assert fakes.calls_for("slack") == []


def test_slack_reply_is_mrkdwn_and_cannot_ping(fakes, sleeps):
    text = (
        "## Result\n**bold** and [docs](https://example.com/a?b=1&c=2) <!channel>\n```py\nx<1\n```"
    )
    make("slack", fakes, sleeps).send(Target("slack", TARGETS["slack"]), ok(text), creds("slack"))
    [call] = fakes.calls_for("slack")
    assert call.json["text"] == (
        "*Result*\n*bold* and <https://example.com/a?b=1&amp;c=2|docs> &lt;!channel&gt;\n"
        "```\nx&lt;1\n```"
    )


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_app_failure_sends_a_short_plain_message(name, fakes, sleeps):
    failed = Outcome("d-2", "failed", "", None, None, "The app timed out.")
    make(name, fakes, sleeps).send(Target(name, TARGETS[name]), failed, creds(name))
    [call] = fakes.calls_for(name)
    shown = call.text.replace(OWN_MARKER, "").strip()
    assert shown == f"{FAILED_MESSAGE} (The app timed out.)"


def test_paused_run_says_it_waits_for_input(fakes, sleeps):
    paused = Outcome("d-3", "paused", "", None, None, None)
    make("telegram", fakes, sleeps).send(Target("telegram", TARGETS["telegram"]), paused,
                                         creds("telegram"))  # fmt: skip
    assert fakes.calls_for("telegram")[0].text == PAUSED_MESSAGE


def test_failure_text_is_cut_and_stripped_of_control_characters(fakes, sleeps):
    failed = Outcome("d-2", "failed", "", None, None, "line1\x1b[31m\r\n" + "x" * 500)
    make("discord", fakes, sleeps).send(
        Target("discord", TARGETS["discord"]), failed, creds("discord")
    )
    text = fakes.calls_for("discord")[0].text
    assert "\x1b" not in text and "\r" not in text
    assert len(text) < 300


def test_telegram_errors_never_show_the_token(fakes, sleeps, caplog):
    caplog.set_level(logging.DEBUG)
    fakes.script(
        "telegram",
        Response(
            400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}
        ),
    )
    with pytest.raises(ReplyFailed) as failed:
        make("telegram", fakes, sleeps).send(
            Target("telegram", TARGETS["telegram"]), ok("hi"), creds("telegram")
        )
    assert "chat not found" in str(failed.value)
    secret_part = TELEGRAM_TOKEN.split(":")[1]
    assert secret_part not in str(failed.value)
    assert all(secret_part not in r.getMessage() for r in caplog.records)
    assert any("127.0.0.1" in r.getMessage() for r in caplog.records)  # the host is logged


def test_line_stale_reply_token_goes_to_push_with_a_retry_key(fakes, sleeps):
    target = Target("line", {**TARGETS["line"], "received_at": NOW - REPLY_WINDOW - 1})
    make("line", fakes, sleeps).send(target, ok("late answer"), creds("line"))
    [call] = fakes.calls_for("line")
    assert call.path == "/v2/bot/message/push"
    assert call.json == {
        "to": "U" + "a" * 32,
        "messages": [{"type": "text", "text": "late answer"}],
    }
    assert len(call.headers["x-line-retry-key"]) == 36


def test_line_refused_reply_token_falls_back_to_push(fakes, sleeps):
    fakes.script("line", Response(400, {"message": "Invalid reply token"}))
    make("line", fakes, sleeps).send(Target("line", TARGETS["line"]), ok("hi"), creds("line"))
    assert [c.path for c in fakes.calls_for("line")] == [
        "/v2/bot/message/reply",
        "/v2/bot/message/push",
    ]


def test_line_more_than_five_parts_reply_then_push(fakes, sleeps):
    text = answer(5000 * 6 + 100)
    make("line", fakes, sleeps).send(Target("line", TARGETS["line"]), ok(text), creds("line"))
    calls = fakes.calls_for("line")
    assert [c.path for c in calls] == ["/v2/bot/message/reply", "/v2/bot/message/push"]
    assert len(calls[0].json["messages"]) == 5
    assert 0 < len(calls[1].json["messages"]) <= 5
    sent = [m["text"] for c in calls for m in c.json["messages"]]
    assert all(units(t) <= 5000 for t in sent)
    assert words_of(" ".join(sent)) == words_of(text)


def test_line_push_repeat_answered_409_counts_as_delivered(fakes, sleeps):
    target = Target("line", {**TARGETS["line"], "received_at": 0})
    fakes.script("line", server_error(500), Response(409, {"message": "already accepted"}))
    make("line", fakes, sleeps).send(target, ok("hi"), creds("line"))
    calls = fakes.calls_for("line")
    assert [c.status for c in calls] == [500, 409]
    assert calls[0].headers["x-line-retry-key"] == calls[1].headers["x-line-retry-key"]


def test_gitlab_issue_note_and_self_hosted_reply_url_is_not_trusted(fakes, sleeps):
    channel = make("gitlab", fakes, sleeps)
    target = Target("gitlab", {"project_id": 5, "kind": "issues", "iid": 9})
    channel.send(target, ok("noted"), creds("gitlab"))
    assert fakes.calls_for("gitlab")[0].path == "/projects/5/issues/9/notes"
    # reply_url is an endpoint setting: a loopback server there is refused, nothing is sent
    with pytest.raises(ReplyFailed, match="not a public address"):
        channel.send(target, ok("noted"), Credentials(TOKEN, fakes.base("gitlab")))
    assert len(fakes.calls_for("gitlab")) == 1
    # unless the operator lists the host: a self-managed GitLab on the office network
    listed = GitLab(Http(sleep=sleeps.append, reply_hosts=(host_port(fakes.url),)))
    listed.send(target, ok("noted"), Credentials(TOKEN, fakes.base("gitlab")))
    assert len(fakes.calls_for("gitlab")) == 2
    # and then only the listed hosts
    with pytest.raises(ReplyFailed, match="not in the provider's allowed hosts"):
        listed.send(target, ok("noted"), Credentials(TOKEN, "https://gitlab.example.com"))


def test_reply_allowed_hosts_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("APP_BRIDGE_REPLY_ALLOWED_HOSTS", "git.corp:8443, 10.0.0.5")
    reply_allowed_hosts.cache_clear()
    try:
        assert Http().reply_url_hosts() == ("git.corp:8443", "10.0.0.5")
    finally:
        reply_allowed_hosts.cache_clear()


def test_api_bases_reply_url_environment_and_default():
    http = Http(bases={"github": "http://127.0.0.1:8080/gh/"})
    ghe = http.api("github", "https://ghe.example.com", "/api/v3")
    assert (ghe.base, ghe.allowed_hosts) == ("https://ghe.example.com/api/v3", None)
    assert http.api("github", "https://ghe.example.com/api/v3/", "/api/v3").base == (
        "https://ghe.example.com/api/v3"
    )
    operator = http.api("github", "", "/api/v3")
    assert (operator.base, operator.allowed_hosts) == (
        "http://127.0.0.1:8080/gh",
        ("127.0.0.1:8080",),
    )
    public = http.api("gitlab")
    assert (public.base, public.allowed_hosts) == ("https://gitlab.com/api/v4", None)


def test_environment_bases_are_read_once_and_trusted(fakes, sleeps, monkeypatch):
    monkeypatch.setenv("APP_BRIDGE_GITHUB_API", fakes.base("github") + "/")
    environment_bases.cache_clear()
    try:
        channel = GitHub(Http(sleep=sleeps.append))
        channel.send(Target("github", TARGETS["github"]), ok("hi"), creds("github"))
        monkeypatch.setenv("APP_BRIDGE_GITHUB_API", "http://127.0.0.1:9/elsewhere")
        channel.send(Target("github", TARGETS["github"]), ok("again"), creds("github"))
    finally:
        environment_bases.cache_clear()
    assert [c.text.split()[0] for c in fakes.calls_for("github")] == ["hi", "again"]


def test_registry_channels_use_the_environment(fakes):
    assert replies.CHANNELS == (
        "slack", "discord", "telegram", "line", "whatsapp", "github", "gitlab", "callback",
    )  # fmt: skip
    assert isinstance(replies.channel("slack"), Slack)
    with pytest.raises(KeyError):
        replies.channel("response")


def test_callback_is_signed_per_standard_webhooks(fakes, sleeps):
    host = host_port(fakes.url)
    channel = Callback(Http(sleep=sleeps.append, reply_hosts=(host,)))
    url = fakes.base("callback") + "/results"
    fakes.script("callback", server_error(502))
    outcome = Outcome("slack:Ev01", "succeeded", "42", {"x": 1}, "conv-9", None)
    channel.send(Target("callback", {}), outcome, Credentials(WH_SECRET, url))
    calls = fakes.calls_for("callback")
    assert [c.status for c in calls] == [502, 200]
    last = calls[-1]
    assert last.path == "/results"
    assert Webhook(WH_SECRET).verify(last.body, last.headers) == {
        "id": "slack:Ev01",
        "status": "succeeded",
        "answer": "42",
        "outputs": {"x": 1},
        "conversation_id": "conv-9",
        "error": None,
    }
    assert calls[0].headers["webhook-id"] == last.headers["webhook-id"] == "slack:Ev01"


def test_callback_reply_url_on_loopback_is_refused_without_a_call(fakes, sleeps):
    channel = Callback(Http(sleep=sleeps.append, reply_hosts=()))
    with pytest.raises(ReplyFailed, match="reply_url"):
        channel.send(
            Target("callback", {}), ok("hi"), Credentials(WH_SECRET, fakes.base("callback"))
        )
    assert fakes.calls_for("callback") == []


def test_callback_settings_are_checked():
    channel = Callback(Http(reply_hosts=()))
    with pytest.raises(ReplyFailed, match="reply_url"):
        channel.check(Credentials(WH_SECRET, ""))
    with pytest.raises(ReplyFailed, match="reply_token"):
        channel.check(Credentials("not-a-secret", "https://example.com/hook"))
    channel.check(Credentials(WH_SECRET, "https://example.com/hook"))


@pytest.mark.parametrize("name", ["slack", "telegram"])
def test_a_success_answer_longer_than_the_read_limit_still_counts_as_ok(name, fakes, sleeps):
    # Slack and Telegram echo the posted message: a full-length part makes a response body
    # longer than bridge.transport.outbound reads, so "ok" is found at its start
    text = "y " * (LIMITS[name] // 2 - 1)
    make(name, fakes, sleeps).send(Target(name, TARGETS[name]), ok(text), creds(name))
    [call] = fakes.calls_for(name)
    assert call.status == 200 and len(call.text) > 3900
