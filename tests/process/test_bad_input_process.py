"""Bad input through the real plugin process (issue 10 items 5 and 6): a 400 (or 413) JSON
error, the app never invoked, and the process still answering another endpoint afterwards."""

import json

import pytest
from conftest import SETTINGS

from bridge.protocols.mapping import MAX_MAPPED_BODY
from devkit.wire import daemon_request_bytes

AUTH = {"Authorization": "Bearer test-key", "Content-Type": "application/json"}
SURROGATE = b'{"query": "\\ud800", "inputs": {}}'
DEEP = b'{"query": "hi", "inputs": {"a": ' + b"[" * 300 + b"]" * 300 + b"}}"


def still_answers(plugin_process):
    raw = daemon_request_bytes("GET", "/v1/parameters", headers=AUTH)
    r = plugin_process.request(raw, SETTINGS, endpoint_id="endpoint-other")
    assert r.status == 200 and "user_input_form" in r.json()


@pytest.mark.parametrize("path", ["/v1/chat-messages", "/v1/chat/completions", "/webhook"])
@pytest.mark.parametrize("body", [SURROGATE, DEEP], ids=["surrogate", "deep"])
def test_bad_json_is_400_through_the_process(plugin_process, workspace, path, body):
    if path == "/v1/chat/completions":
        body = body.replace(b'"query": ', b'"messages": [{"role": "user", "content": ', 1)
        body = body.replace(b', "inputs"', b'}], "inputs"', 1)
    r = plugin_process.request(daemon_request_bytes("POST", path, headers=AUTH, body=body),
                               SETTINGS)  # fmt: skip
    assert r.status == 400, r.body[:200]
    assert "invalid_param" in r.text and "Traceback" not in r.text
    assert workspace.invocations == []
    still_answers(plugin_process)


def test_a_large_mapped_body_is_413_and_the_process_lives_on(plugin_process, workspace):
    body = json.dumps({"items": ["x"] * (MAX_MAPPED_BODY // 5 + 10)}).encode()
    settings = {**SETTINGS, "webhook_query": "join(',', map(&to_string(@), body.items))"}
    r = plugin_process.request(daemon_request_bytes("POST", "/webhook", headers=AUTH, body=body),
                               settings)  # fmt: skip
    assert r.status == 413 and r.json()["message"].startswith("webhook_query:")
    assert workspace.invocations == []
    still_answers(plugin_process)
