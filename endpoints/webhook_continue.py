"""POST /_continue (hidden) — a signed continuation finishes a deferred webhook delivery."""

from collections.abc import Mapping

from dify_plugin import Endpoint
from werkzeug import Request, Response

from bridge.protocols import webhook
from bridge.transport.adapter import serve
from bridge.transport.errors import Family


class WebhookContinueEndpoint(Endpoint):
    def _invoke(self, r: Request, values: Mapping, settings: Mapping) -> Response:
        return serve(Family.DIFY, webhook.resume, r, settings, self.session)
