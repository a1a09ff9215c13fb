"""GET /webhook — verified webhook receiver."""

from collections.abc import Mapping

from dify_plugin import Endpoint
from werkzeug import Request, Response

from bridge import webhook
from bridge.call import Call
from bridge.errors import Family
from bridge.guard import guarded


class WebhookHandshakeEndpoint(Endpoint):
    def _invoke(self, r: Request, values: Mapping, settings: Mapping) -> Response:
        return guarded(
            Family.DIFY, lambda: webhook.handshake_get(Call.from_request(r, settings, self.session))
        )
