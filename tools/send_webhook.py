"""Send webhook tool: a thin adapter from tool parameters to :mod:`bridge.transport.outbound`.

Invalid input (bad URL, host not allowed, malformed payload, bad secret) raises
:class:`~bridge.transport.outbound.WebhookInputError` with a message that says what to fix: Dify
fails the tool call with that message (a workflow node can branch on it; an agent reads it and can
correct its arguments). A delivery that was attempted is never an exception: its outcome,
including HTTP errors and give-ups, is returned as JSON (``ok`` false) plus a text summary.

Destinations that are not public (loopback, private, link-local, CGNAT, cloud metadata, or a
name resolving to one) are refused before any connection unless the provider's allowed hosts
name that exact host; transport failures reach the app as generic texts (see
:mod:`bridge.transport.outbound`).
"""

from collections.abc import Generator
from typing import Any
from urllib.parse import urlsplit

from dify_plugin import Tool
from dify_plugin.entities.tool import ToolInvokeMessage

from bridge.transport.outbound import Delivery, check_url, send_signed


class SendWebhookTool(Tool):
    def _invoke(self, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        credentials = self.runtime.credentials or {}
        url = tool_parameters.get("url")
        if not isinstance(url, str) or not url.strip():
            url = credentials.get("default_url")
        allowed_hosts = credentials.get("allowed_hosts") or None
        url = check_url(url, allowed_hosts)
        event_type = tool_parameters.get("event_type")
        delivery = send_signed(
            url,
            event_type,  # type: ignore[arg-type]  # validated by send_signed
            tool_parameters.get("payload"),
            credentials.get("signing_secret"),  # type: ignore[arg-type]
            idempotency_key=tool_parameters.get("idempotency_key") or None,
            allowed_hosts=allowed_hosts,
        )
        yield self.create_json_message(delivery.as_dict())
        yield self.create_text_message(summary(delivery, str(event_type).strip(), url))


def summary(delivery: Delivery, event_type: str, url: str) -> str:
    """One line for the app user: outcome, host, status, attempts and webhook id."""
    host = urlsplit(url).hostname or "?"
    tries = f"{delivery.attempts} attempt{'s' if delivery.attempts != 1 else ''}"
    if delivery.ok:
        return (
            f"Webhook {event_type} delivered to {host}: HTTP {delivery.status} after {tries} "
            f"(webhook-id {delivery.webhook_id})."
        )
    return (
        f"Webhook {event_type} to {host} failed: {delivery.error} "
        f"(webhook-id {delivery.webhook_id})."
    )
