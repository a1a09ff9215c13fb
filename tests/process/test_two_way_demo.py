"""The demo workspace's two-way endpoints through the local runner: the public port (nginx +
daemon) acks, the continuation runs through the daemon listener, the fake API gets the reply."""

import json
import time

import httpx

from devkit import deliver
from devkit.runner import DEMO_CONFIG, Bridge, running


def test_demo_slack_endpoint_acks_then_replies_on_the_fake_slack():
    bridge = Bridge(DEMO_CONFIG, fakes_port=0)
    with running(bridge) as base:
        endpoint = deliver.demo_endpoint("slack")
        now = time.time()
        document, _ = deliver.payload("slack", "hello demo", now)
        body = json.dumps(document).encode()
        secret = endpoint["settings"]["webhook_secret"]
        headers = {"Content-Type": "application/json", **deliver.sign("slack", body, secret, now)}
        r = httpx.post(f"{base}/e/{endpoint['hook_id']}/webhook", content=body, headers=headers)
        assert (r.status_code, r.content) == (200, b"")
        assert bridge.fakes.calls_for("slack") == []  # the demo app takes 3.5 s: not yet
        (call,) = bridge.fakes.wait_for("slack", 1, timeout=30)
        assert "You said: hello demo" in call.text
        assert bridge.plugin.dropped == []
