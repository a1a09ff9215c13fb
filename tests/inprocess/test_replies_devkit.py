"""The devkit pieces of the two-way bridge: fake platform APIs and ``./dev deliver``'s signing.

Deliveries made by ``devkit.deliver`` must verify under the bridge's own verifiers (and
Slack's under slack_sdk's), and must be deliveries the reply channels run on.
"""

from __future__ import annotations

import json
import time
import urllib.request

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
    assert set(env) == {f"APP_BRIDGE_{p.upper()}_API" for p in deliver.PLATFORMS}
    assert env["APP_BRIDGE_SLACK_API"].endswith("/slack/api")
    assert env["APP_BRIDGE_DISCORD_API"].endswith("/discord/api/v10")
