"""The devkit pieces of the two-way bridge: fake platform APIs and ``./dev deliver``'s signing.

Deliveries made by ``devkit.deliver`` must verify under the bridge's own verifiers (and
Slack's under slack_sdk's), and must be deliveries the reply channels run on.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from slack_sdk.signature import SignatureVerifier

from bridge import replies, verifiers
from bridge.verifiers import Secrets, SignedRequest
from devkit import deliver
from devkit.fakes import FakePlatforms, Response, retry_after

SCHEMES = {
    "slack": ("slack", "slack-signing-secret"),
    "discord": ("discord", deliver.DISCORD_PUBLIC_KEY),
    "telegram": ("telegram", "telegram-secret-token"),
    "line": ("line", "line-channel-secret"),
    "whatsapp": ("meta", "meta-app-secret"),
    "github": ("github", "github-webhook-secret"),
    "gitlab": ("gitlab", "gitlab-webhook-token"),
}


@pytest.mark.parametrize("platform", deliver.PLATFORMS)
def test_demo_deliveries_verify_and_run(platform):
    scheme, secret = SCHEMES[platform]
    now = time.time()
    document, extra = deliver.payload(platform, "what is new?", now)
    body = json.dumps(document).encode()
    headers = {
        k.lower(): v for k, v in {**extra, **deliver.sign(scheme, body, secret, now)}.items()
    }
    verifiers.verify(scheme, SignedRequest("POST", headers, body, now=now), Secrets(secret))
    mapping_document = {"body": document, "headers": headers, "query": {}, "method": "POST"}
    channel = replies.channel(platform)
    assert channel.skip(mapping_document) is None
    assert channel.preset(mapping_document).query == "what is new?"
    assert channel.target(mapping_document) is not None


def test_slack_signature_is_the_one_slack_sdk_checks():
    now = time.time()
    body = b'{"type":"event_callback"}'
    headers = deliver.sign("slack", body, "s3cret", now)
    assert SignatureVerifier("s3cret").is_valid(
        body, headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"]
    )


def test_paths_are_shown_without_tokens():
    assert deliver.redact("/bot123:AAA-bbb/sendMessage") == "/bot***/sendMessage"
    assert deliver.redact("/webhooks/11/tok.en/messages/@original") == (
        "/webhooks/11/***/messages/@original"
    )
    assert deliver.redact("/v2/bot/message/reply") == "/v2/bot/message/reply"


def test_fakes_record_calls_and_follow_their_script():
    with FakePlatforms() as fakes:
        fakes.script("github", retry_after(2), Response(500, {"message": "oops"}))
        url = fakes.base("github") + "/repos/a/b/issues/1/comments"
        auth = {"Authorization": "Bearer t"}
        statuses = [httpx.post(url, json={"body": "x"}, headers=auth).status_code for _ in range(3)]
        assert statuses == [429, 500, 201]
        first = fakes.calls_for("github")[0]
        assert (first.method, first.path, first.json, first.headers["authorization"]) == (
            "POST",
            "/repos/a/b/issues/1/comments",
            {"body": "x"},
            "Bearer t",
        )
        # the credential the real API demands
        assert httpx.post(url, json={"body": "x"}).status_code == 401
        slack = httpx.post(fakes.base("slack") + "/chat.postMessage", json={"text": "x"})
        assert slack.status_code == 200 and slack.json() == {"ok": False, "error": "not_authed"}
        assert httpx.get(fakes.url + "/nowhere").status_code == 404
        # other processes read the calls over HTTP
        with urllib.request.urlopen(fakes.url + "/_fake/calls?after=2") as answer:
            recorded = json.load(answer)
        assert recorded["next"] == 5
        assert [c["status"] for c in recorded["calls"]] == [201, 401, 200]
        assert fakes.wait_for("slack", 1, timeout=1)[0].text == "x"
        assert fakes.wait_for("line", 1, timeout=0.1) == []


def test_fakes_environment_names_every_platform_base():
    with FakePlatforms() as fakes:
        env = fakes.environment()
    assert set(env) == {f"APP_BRIDGE_{p.upper()}_API" for p in deliver.PLATFORMS} | {
        "APP_BRIDGE_REPLY_ALLOWED_HOSTS"
    }
    assert env["APP_BRIDGE_REPLY_ALLOWED_HOSTS"] == fakes.url.removeprefix("http://")
    assert env["APP_BRIDGE_SLACK_API"].endswith("/slack/api")
    assert env["APP_BRIDGE_DISCORD_API"].endswith("/discord/api/v10")


class StandIn:
    """A stand-in for ``./dev run``: checks the delivery's Slack signature, acks 200 and then
    posts a reply to the fake Slack API, as the bridge's continuation would."""

    def __init__(self, fakes: FakePlatforms, secret: str) -> None:
        self.received: list[dict] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                verified = SignatureVerifier(secret).is_valid(
                    body,
                    self.headers["X-Slack-Request-Timestamp"],
                    self.headers["X-Slack-Signature"],
                )
                stand_in.received.append({"path": self.path, "verified": verified})
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                event = json.loads(body)["event"]
                httpx.post(
                    fakes.base("slack") + "/chat.postMessage",
                    json={"channel": event["channel"], "text": f"You said: {event['text']}"},
                    headers={"Authorization": "Bearer xoxb-demo"},
                )

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> StandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def test_dev_deliver_prints_the_ack_and_the_reply(tmp_path, capsys):
    config = tmp_path / "demo.yaml"
    settings = {"api_key": "k", "webhook_verification": "slack", "webhook_secret": "sss",
                "webhook_reply": "slack", "reply_token": "xoxb-demo"}  # fmt: skip
    config.write_text(json.dumps({"endpoints": [{"hook_id": "demoslack0000001",
                                                 "endpoint_id": "e", "settings": settings}]}))  # fmt: skip
    with FakePlatforms() as fakes, StandIn(fakes, "sss") as runner:
        url = f"http://127.0.0.1:{runner.server.server_address[1]}"
        code = deliver.main(
            ["slack", "hi there", "--url", url, "--fakes", fakes.url, "--config", str(config),
             "--wait", "10"]
        )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert runner.received == [{"path": "/e/demoslack0000001/webhook", "verified": True}]
    assert "ack 200" in out
    assert "reply POST /slack/api/chat.postMessage → 200" in out
    assert "You said: hi there" in out


def test_dev_deliver_without_fakes_says_so(tmp_path, capsys):
    config = tmp_path / "demo.yaml"
    config.write_text(json.dumps({"endpoints": [{"hook_id": "demotelegram0001", "settings": {
        "webhook_verification": "telegram", "webhook_secret": "t", "webhook_reply": "telegram"}}]}))  # fmt: skip
    assert (
        deliver.main(["telegram", "x", "--fakes", "http://127.0.0.1:9", "--config", str(config)])
        == 1
    )
    assert "no fake platform APIs" in capsys.readouterr().err
