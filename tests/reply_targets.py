"""Where each reply channel must post, and with which credential (``devkit.fakes`` records the
call): shared by the emulated and the real-daemon two-way tests. The targets are those of the
deliveries ``devkit.deliver.payload`` builds."""

from typing import Any


def assert_reply_target(platform: str, call: Any, tokens: dict[str, str]) -> None:
    auth = call.headers.get("authorization", "")
    if platform == "slack":
        assert call.path == "/chat.postMessage" and auth == f"Bearer {tokens['slack']}"
        assert call.json["channel"] == "D0DEMO"
    elif platform == "discord":  # the interaction's token is the credential
        assert call.method == "PATCH" and call.path.endswith("/messages/@original")
        assert "/webhooks/1100000000000000001/demo-interaction-token." in call.path
    elif platform == "telegram":
        assert call.path == f"/bot{tokens['telegram']}/sendMessage"
        assert call.json["chat_id"] == 4242
    elif platform == "line":
        assert call.path == "/v2/bot/message/reply" and auth == f"Bearer {tokens['line']}"
    elif platform == "whatsapp":
        assert call.path.endswith("/100000000000001/messages")
        assert auth == f"Bearer {tokens['whatsapp']}" and call.json["to"] == "15551234567"
    elif platform == "github":
        assert call.path == "/repos/demo/app-bridge/issues/1/comments"
        assert auth.split()[-1] == tokens["github"]
    elif platform == "gitlab":
        assert call.path == "/projects/1/issues/1/notes"
        assert call.headers.get("private-token") == tokens["gitlab"]
    else:
        assert call.path == "/results" and call.json["status"] == "succeeded"
        assert call.headers.get("webhook-signature", "").startswith("v1,")
