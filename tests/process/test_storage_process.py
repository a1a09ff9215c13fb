"""Storage round trips and redeliveries through the real plugin process (issues #10, #14)."""

import json
import time
import uuid

from conftest import SETTINGS
from signers import settings as scheme_settings
from signers import sign

from devkit.wire import daemon_request_bytes

AUTH = {"Authorization": "Bearer test-key", "Content-Type": "application/json"}


def chat(plugin_process, **fields):
    body = {"query": "hi", "user": f"u-{uuid.uuid4()}", **fields}
    raw = daemon_request_bytes(
        "POST", "/v1/chat-messages", headers=AUTH, body=json.dumps(body).encode()
    )
    return plugin_process.request(raw, SETTINGS)


def test_a_conversation_costs_one_read_and_one_write_then_nothing(plugin_process, workspace):
    user = f"u-{uuid.uuid4()}"
    first = chat(plugin_process, user=user)
    assert first.status == 200
    assert workspace.storage.ops == ["get", "exist", "set"]  # a bucket's first write
    conversation = json.loads(first.body)["conversation_id"]
    workspace.storage.ops.clear()
    again = chat(plugin_process, user=user, conversation_id=conversation)
    assert again.status == 200
    assert workspace.storage.ops == []  # the process knows this owner
    assert chat(plugin_process, user="someone-else", conversation_id=conversation).status == 404
    assert workspace.storage.ops == []  # nor does refusing a stranger read storage
    assert len(workspace.invocations) == 2


def test_line_redelivery_is_replayed_not_refused(plugin_process, workspace):
    event = {"type": "message", "webhookEventId": f"01HX{uuid.uuid4().hex[:20]}",
             "message": {"type": "text", "text": "hi"}, "deliveryContext": {"isRedelivery": False}}  # fmt: skip
    settings = scheme_settings("line", "app-workflow-0001")

    def deliver(payload):
        body = json.dumps({"destination": "U0", "events": [payload]}).encode()
        headers = {"Content-Type": "application/json", **sign("line", body, time.time())}
        raw = daemon_request_bytes("POST", "/webhook", headers=headers, body=body)
        return plugin_process.request(raw, settings)

    first = deliver(event)
    redelivery = deliver({**event, "deliveryContext": {"isRedelivery": True}})
    assert first.status == redelivery.status == 200
    assert redelivery.header("Idempotent-Replay") == "true"
    assert redelivery.body == first.body
    assert len(workspace.invocations) == 1
