"""Every verification scheme, end to end through the daemon emulator and the real plugin."""

import json
import time

import pytest
from signers import SCHEMES, SIGNATURE_HEADER, TIMESTAMPED, settings, sign

from devkit.wire import daemon_request_bytes
from devkit.workspace import App, Script

BODY = json.dumps({"inputs": {"topic": "release"}, "query": "summarise", "user": "u-1"}).encode()


@pytest.fixture
def deliver(plugin_process, workspace):
    form = [{"text-input": {"variable": "topic", "label": "Topic", "required": True}}]
    workspace.add_app(App("hook-flow", "advanced-chat", "Flow", user_input_form=form,
                          script=Script(answer="On {inputs[topic]}: {query}")))  # fmt: skip

    def send(scheme, headers, body=BODY, **extra):
        raw = daemon_request_bytes(
            "POST", "/webhook", headers={"Content-Type": "application/json", **headers}, body=body
        )
        return plugin_process.request(raw, settings(scheme, "hook-flow", **extra))

    return send


@pytest.mark.parametrize("scheme", SCHEMES)
def test_valid_delivery_runs_the_app_with_mapped_inputs(deliver, workspace, scheme):
    r = deliver(scheme, sign(scheme, BODY, time.time()))
    assert r.status == 200, r.text
    assert r.json()["answer"] == "On release: summarise"
    (run,) = workspace.invocations
    assert (run.inputs, run.query) == ({"topic": "release"}, "summarise")


def refused(r, workspace):
    assert r.status == 401, r.text
    assert r.json()["code"] == "unauthorized"
    assert "Traceback" not in r.text
    return workspace.invocations == []


@pytest.mark.parametrize("scheme", SCHEMES)
def test_tampered_body(deliver, workspace, scheme):
    headers = sign(scheme, BODY, time.time())
    if scheme in ("api_key", "gitlab", "telegram"):
        pytest.skip("shared-secret schemes do not sign the body")
    assert refused(deliver(scheme, headers, body=BODY.replace(b"release", b"rele4se")), workspace)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_wrong_secret(deliver, workspace, scheme):
    other = (
        "wrong-secret"
        if scheme != "standard_webhooks"
        else "whsec_" + "d3Jvbmcta2V5LXdyb25nLWtleS0zMmJ5dGVzISE="
    )
    if scheme == "discord":
        other = "someone-else"  # signs with a freshly generated key
    assert refused(deliver(scheme, sign(scheme, BODY, time.time(), secret=other)), workspace)


@pytest.mark.parametrize("scheme", TIMESTAMPED)
def test_stale_timestamp(deliver, workspace, scheme):
    assert refused(deliver(scheme, sign(scheme, BODY, time.time() - 900)), workspace)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_missing_header(deliver, workspace, scheme):
    headers = sign(scheme, BODY, time.time())
    headers.pop(SIGNATURE_HEADER[scheme])
    assert refused(deliver(scheme, headers), workspace)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_malformed_header(deliver, workspace, scheme):
    headers = sign(scheme, BODY, time.time())
    headers[SIGNATURE_HEADER[scheme]] = "%%garbage, v1=zz t=x"
    assert refused(deliver(scheme, headers), workspace)


def test_provider_handshakes_do_not_run_the_app(deliver, workspace, plugin_process):
    slack_challenge = json.dumps(
        {
            "type": "url_verification",
            "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
            "token": "x",
        }
    ).encode()
    r = deliver("slack", sign("slack", slack_challenge, time.time()), body=slack_challenge)
    assert r.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}
    ping = json.dumps({"type": 1, "id": "123", "application_id": "456"}).encode()
    r = deliver("discord", sign("discord", ping, time.time()), body=ping)
    assert r.json() == {"type": 1}
    forged = deliver(
        "discord", sign("discord", ping, time.time(), secret="someone-else"), body=ping
    )
    assert forged.status == 401
    raw = daemon_request_bytes(
        "GET", "/webhook?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=hook-key-0001"
    )
    r = plugin_process.request(raw, settings("meta", "hook-flow"))
    assert (r.status, r.text, r.header("Content-Type")) == (
        200,
        "1158201444",
        "text/plain; charset=utf-8",
    )
    raw = daemon_request_bytes(
        "GET", "/webhook?hub.mode=subscribe&hub.challenge=1&hub.verify_token=nope"
    )
    assert plugin_process.request(raw, settings("meta", "hook-flow")).status == 401
    assert workspace.invocations == []


def test_duplicate_delivery_runs_once_and_replays(deliver, workspace):
    headers = sign("github", BODY, time.time(), delivery="72d3162e-cc78-11e3-81ab-4c9367dc0958")
    first = deliver("github", headers)
    second = deliver("github", headers)
    assert first.status == second.status == 200
    assert second.body == first.body
    assert (
        second.header("Idempotent-Replay") == "true" and first.header("Idempotent-Replay") is None
    )
    assert len(workspace.invocations) == 1
