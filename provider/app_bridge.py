"""Tool provider: checks the Send webhook credentials when a workspace admin saves them."""

from typing import Any

from dify_plugin import ToolProvider
from dify_plugin.errors.tool import ToolProviderCredentialValidationError

from bridge.transport.outbound import WebhookInputError, check_url, parse_hosts, validate_secret


class AppBridgeProvider(ToolProvider):
    """Validates format only: no request is sent, so saving credentials has no side effect.

    The default URL is checked like a tool call's URL, except that names are not resolved:
    an IP literal or ``localhost`` that is not public needs an exact allowed-hosts entry; a name
    resolving to a private address is refused when the tool runs (see
    ``bridge.transport.outbound``).
    """

    def _validate_credentials(self, credentials: dict[str, Any]) -> None:
        hosts = credentials.get("allowed_hosts") or None
        default_url = credentials.get("default_url")
        checks = [
            ("Signing secret", lambda: validate_secret(credentials.get("signing_secret"))),
            ("Allowed hosts", lambda: parse_hosts(hosts)),
        ]
        if isinstance(default_url, str) and default_url.strip():
            checks.append(("Default URL", lambda: check_url(default_url, hosts)))
        for field, check in checks:
            try:
                check()
            except WebhookInputError as exc:
                raise ToolProviderCredentialValidationError(f"{field}: {exc}") from None
