"""Send webhook tool loaded through the SDK's registration and run by its executor."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from dify_plugin.core.entities.plugin.request import (
    ToolInvokeRequest,
    ToolValidateCredentialsRequest,
)
from dify_plugin.entities.tool import ToolInvokeMessage, ToolParameter
from dify_plugin.errors.tool import ToolProviderCredentialValidationError
from standardwebhooks.webhooks import Webhook

from bridge.transport import outbound
from bridge.transport.outbound import WebhookInputError

SECRET = "whsec_" + base64.b64encode(b"tool-test-signing-key-32-bytes!!").decode()
PROVIDER, TOOL = "app_bridge", "send_webhook"
LOOPBACK = "127.0.0.1"  # private addresses need an exact allowed-hosts entry
JSON = ToolInvokeMessage.MessageType.JSON
TEXT = ToolInvokeMessage.MessageType.TEXT


class Receiver:
    """Loopback receiver: answers the scripted statuses in order, verifies every signature."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses) or [200]
        self.seen: list[tuple[dict[str, str], object]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.seen.append((headers, Webhook(SECRET).verify(body, headers)))
                status = receiver.statuses[min(len(receiver.seen), len(receiver.statuses)) - 1]
                reply = b'{"accepted": true}'
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver(503, 200)
    try:
        yield server
    finally:
        server.stop()


def credentials(**extra: str) -> dict[str, str]:
    return {"signing_secret": SECRET, "default_url": "", "allowed_hosts": "", **extra}


def invoke(inprocess, creds: dict, **params: object) -> list[ToolInvokeMessage]:
    """Run the tool the way the plugin process does: ToolInvokeRequest -> executor."""
    request = ToolInvokeRequest(
        user_id="user-1", provider=PROVIDER, tool=TOOL, credentials=creds, tool_parameters=params
    )
    return list(inprocess.executor.invoke_tool(inprocess.session(), request))


def validate(inprocess, creds: dict) -> dict:
    request = ToolValidateCredentialsRequest(user_id="user-1", provider=PROVIDER, credentials=creds)
    return inprocess.executor.validate_tool_provider_credentials(inprocess.session(), request)


def test_provider_and_tool_are_registered(inprocess):
    registration = inprocess.registration
    (provider,) = [p for p in registration.tools_configuration if p.identity.name == PROVIDER]
    assert [c.name for c in provider.credentials_schema] == [
        "signing_secret",
        "default_url",
        "allowed_hosts",
    ]
    assert provider.credentials_schema[0].type.value == "secret-input"
    (tool,) = provider.tools
    forms = {p.name: (p.form, p.required) for p in tool.parameters}
    llm, form = ToolParameter.ToolParameterForm.LLM, ToolParameter.ToolParameterForm.FORM
    assert forms == {
        "url": (form, False),
        "event_type": (llm, True),
        "payload": (llm, True),
        "idempotency_key": (llm, False),
    }
    assert registration.get_tool_cls(PROVIDER, TOOL).__name__ == "SendWebhookTool"
    assert registration.endpoints_configuration  # the endpoint group is still there


def test_send_webhook_retries_and_returns_json_and_text(inprocess, receiver):
    messages = invoke(
        inprocess,
        credentials(allowed_hosts=LOOPBACK),
        url=receiver.url,
        event_type="order.created",
        payload='{"order_id": "A-17"}',
        idempotency_key="order-A-17",
    )
    assert [m.type for m in messages] == [JSON, TEXT]
    assert messages[0].message.json_object == {
        "ok": True,
        "status": 200,
        "attempts": 2,
        "webhook_id": "order-A-17",
        "response_body": '{"accepted": true}',
        "truncated": False,
        "error": None,
    }
    assert messages[1].message.text == (
        "Webhook order.created delivered to 127.0.0.1: HTTP 200 after 2 attempts "
        "(webhook-id order-A-17)."
    )
    assert [headers["webhook-id"] for headers, _ in receiver.seen] == ["order-A-17"] * 2
    assert receiver.seen[1][1]["data"] == {"order_id": "A-17"}


def test_default_url_is_used_and_failures_are_results(inprocess):
    server = Receiver(404)
    try:
        messages = invoke(
            inprocess,
            credentials(default_url=server.url, allowed_hosts=LOOPBACK),
            event_type="e",
            payload="[]",
        )
    finally:
        server.stop()
    result = messages[0].message.json_object
    assert result["ok"] is False and result["status"] == 404 and result["attempts"] == 1
    assert result["error"] == "the receiver answered HTTP 404"
    assert messages[1].message.text.startswith(
        "Webhook e to 127.0.0.1 failed: the receiver answered HTTP 404 (webhook-id msg_"
    )


@pytest.mark.parametrize(
    ("creds", "params", "message"),
    [
        ({}, {"url": "ftp://127.0.0.1/x"}, "only http:// and https:// URLs can be called"),
        ({"allowed_hosts": "hooks.example.com"}, {}, "'127.0.0.1' is not in the provider's"),
        ({"allowed_hosts": LOOPBACK}, {"payload": "{broken"}, "the payload is not valid JSON"),
        ({}, {"url": ""}, "no URL to send to"),
        ({"allowed_hosts": LOOPBACK, "signing_secret": "x"}, {}, "Standard Webhooks format"),
        ({}, {}, "'127.0.0.1' is not a public address"),
        ({"allowed_hosts": "*.example.com, 127.0.0.1:1"}, {}, "not in the provider's allowed"),
        ({}, {"url": "http://169.254.169.254/latest/meta-data/"}, "is not a public address"),
        ({}, {"url": "http://[::ffff:127.0.0.1]/"}, "is not a public address"),
    ],
)
def test_invalid_input_is_a_clear_tool_error(inprocess, receiver, creds, params, message):
    args = {"url": receiver.url, "event_type": "e", "payload": "{}", **params}
    with pytest.raises(WebhookInputError, match=message):
        invoke(inprocess, credentials(**creds), **args)
    assert receiver.seen == []


def test_tool_from_credentials(inprocess, receiver):
    tool_cls = inprocess.registration.get_tool_cls(PROVIDER, TOOL)
    tool = tool_cls.from_credentials(credentials(default_url=receiver.url, allowed_hosts=LOOPBACK))
    messages = list(tool.invoke({"event_type": "ping", "payload": {"n": 1}}))
    assert messages[0].message.json_object["ok"] is True
    assert receiver.seen[-1][1]["data"] == {"n": 1}


def test_credentials_validation(inprocess):
    assert validate(inprocess, credentials()) == {"result": True}
    ok = credentials(default_url="https://hooks.example.com/in", allowed_hosts="hooks.example.com")
    assert validate(inprocess, ok) == {"result": True}
    cases = [
        ({"signing_secret": "secret"}, "Signing secret: the signing secret must be in Standard"),
        ({"allowed_hosts": "https://x/y"}, "Allowed hosts: allowed host 'https://x/y' is not"),
        ({"default_url": "ftp://hooks.example.com"}, "Default URL: only http:// and https://"),
        (
            {"default_url": "https://other.example/", "allowed_hosts": "hooks.example.com"},
            "Default URL: host 'other.example' is not in the provider's allowed hosts",
        ),
        (
            {"default_url": "http://169.254.169.254/latest/meta-data/"},
            "Default URL: '169.254.169.254' is not a public address",
        ),
        (
            {"default_url": "http://localhost:8080/hook", "allowed_hosts": "*.localhost"},
            "Default URL: host 'localhost' is not in the provider's allowed hosts",
        ),
        (
            {"default_url": "http://10.0.0.5/hook", "allowed_hosts": "10.0.0.5:8443"},
            "Default URL: host '10.0.0.5' is not in the provider's allowed hosts",
        ),
    ]
    private = credentials(default_url="http://10.0.0.5:8443/hook", allowed_hosts="10.0.0.5:8443")
    assert validate(inprocess, private) == {"result": True}  # an exact entry allows it
    for extra, message in cases:
        with pytest.raises(ToolProviderCredentialValidationError, match=message):
            validate(inprocess, credentials(**extra))


def test_private_receiver_needs_an_exact_allowed_host(inprocess):
    server = Receiver(200)
    try:
        for allowed in ("", "*.example.com", "localhost"):
            with pytest.raises(WebhookInputError, match="allowed hosts"):
                invoke(inprocess, credentials(allowed_hosts=allowed), url=server.url,
                       event_type="e", payload="{}")  # fmt: skip
        assert server.seen == []
        messages = invoke(
            inprocess, credentials(allowed_hosts=LOOPBACK), url=server.url, event_type="e",
            payload="{}",
        )  # fmt: skip
        assert messages[0].message.json_object["ok"] is True
        assert server.seen[0][0]["host"] == server.url.split("/")[2]
    finally:
        server.stop()


def test_transport_errors_reach_the_app_generic(inprocess, monkeypatch):
    monkeypatch.setattr(outbound, "backoff_delay", lambda retry, base: 0.0)
    server = Receiver(200)
    url = server.url
    server.stop()  # nothing listens there now
    messages = invoke(
        inprocess, credentials(allowed_hosts=LOOPBACK), url=url, event_type="e", payload="{}"
    )
    result = messages[0].message.json_object
    assert result["ok"] is False and result["status"] is None and result["attempts"] == 4
    assert result["error"] == "gave up after 4 attempts: connection failed"
    assert "Errno" not in messages[1].message.text and "Error" not in messages[1].message.text


@pytest.mark.parametrize("payload", ["[" * 50_000 + "]" * 50_000, '{"a": "\\ud800"}'])
def test_unsendable_payloads_are_a_clear_tool_error_not_a_recursion_error(
    inprocess, receiver, payload
):
    with pytest.raises(WebhookInputError, match=r"nested more than|lone UTF-16 surrogate"):
        invoke(inprocess, credentials(allowed_hosts=LOOPBACK), url=receiver.url,
               event_type="e", payload=payload)  # fmt: skip
    assert receiver.seen == []


@pytest.mark.parametrize("address", ["192.0.0.192", "168.63.129.16", "[::ffff:169.254.169.254]"])
def test_the_tool_refuses_special_purpose_destinations(inprocess, address):
    with pytest.raises(WebhookInputError, match="not a public address"):
        invoke(inprocess, credentials(), url=f"http://{address}/latest/meta-data",
               event_type="e", payload="{}")  # fmt: skip
