"""The demo workspace's signed-webhook endpoints verify with the secrets devkit/demo.yaml
documents, signed as each provider signs, over the local runner."""

from __future__ import annotations

import hashlib
import json
import time

import httpx
import pytest
from nacl.signing import SigningKey

from devkit.runner import DEMO_CONFIG
from tests.signers import sign

DOCUMENTED = {  # scheme: (hook_id, secret as written in demo.yaml's comment)
    "hmac_sha256": ("demohmac00000001", "demo-hmac-secret"),
    "github": ("demogithub000001", "demo-github-secret"),
    "gitlab": ("demogitlab000001", "demo-gitlab-token"),
    "slack": ("demoslack0000001", "demo-slack-signing-secret"),
    "stripe": ("demostripe000001", "whsec_demostripesecret"),
    "standard_webhooks": (
        "demostdwebhooks1",
        "whsec_YXBwLWJyaWRnZS1kZW1vLXN0YW5kYXJkLXdlYmhvb2s=",
    ),
    "discord": (
        "demodiscord00001",
        "e47a08a12f389756e32b5003321054758baabcf7d3611d6210483fe1f9328782",
    ),
    "shopify": ("demoshopify00001", "demo-shopify-secret"),
    "telegram": ("demotelegram0001", "demo-telegram-token"),
    "line": ("demoline00000001", "demo-line-secret"),
    "meta": ("demometa00000001", "demo-meta-secret"),
}

BODIES = {
    "slack": {"type": "event_callback", "event_id": "Ev1", "event": {"text": "hi", "user": "U1"}},
    "stripe": {"id": "evt_1", "type": "invoice.paid", "data": {"object": {}}},
    "github": {"zen": "Keep it logically awesome.", "hook_id": 1},
    "discord": {"type": 1, "id": "1", "application_id": "2"},
    "telegram": {"update_id": 7, "message": {"text": "hi", "chat": {"id": 42}}},
    "line": {"events": [{"webhookEventId": "e1", "type": "message", "message": {"text": "hi"}}]},
}


def test_every_signed_scheme_has_a_demo_endpoint_with_its_secret_documented():
    text = DEMO_CONFIG.read_text(encoding="utf-8")
    for scheme, (hook_id, secret) in DOCUMENTED.items():
        assert f"hook_id: {hook_id}" in text and secret in text, scheme
    from bridge.config.settings import VERIFICATION_SCHEMES

    assert set(DOCUMENTED) == set(VERIFICATION_SCHEMES) - {"api_key"}


@pytest.mark.parametrize("scheme", sorted(DOCUMENTED))
def test_demo_endpoint_accepts_its_documented_signature_and_refuses_others(runner, scheme):
    base, _ = runner
    hook_id, secret = DOCUMENTED[scheme]
    body = json.dumps(BODIES.get(scheme, {"query": "hi"})).encode()
    now = time.time()
    if scheme == "discord":
        ts = str(int(now))
        signature = SigningKey(bytes.fromhex(secret)).sign(ts.encode() + body).signature.hex()
        headers = {"X-Signature-Ed25519": signature, "X-Signature-Timestamp": ts}
    else:
        headers = sign(scheme, body, now, secret=secret)
    headers["Content-Type"] = "application/json"
    url = f"{base}/e/{hook_id}/webhook"
    r = httpx.post(url, content=body, headers=headers, timeout=30)
    assert r.status_code in (200, 204), (scheme, r.status_code, r.text)
    if scheme == "discord":
        assert r.json() == {"type": 1}
    elif scheme != "slack":
        assert "Hello" in r.text, r.text  # the demo chatbot answered
    forged = sign(scheme, body, now, secret="not-the-secret-" + hashlib.md5(b"x").hexdigest())
    forged["Content-Type"] = "application/json"
    r = httpx.post(url, content=body, headers=forged, timeout=30)
    assert r.status_code == 401, (scheme, r.text)


def test_the_broken_demo_endpoint_names_its_problems(runner):
    base, _ = runner
    page = httpx.get(f"{base}/e/demobroken000001/", timeout=30).text
    assert "api_key" in page and "webhook_secret" in page and "need attention" in page
    r = httpx.post(f"{base}/e/demobroken000001/v1/workflows/run", json={"inputs": {}}, timeout=30)
    assert r.status_code == 401
