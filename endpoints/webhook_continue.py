"""POST /_continue (hidden) — a signed continuation finishes a deferred webhook delivery."""

from collections.abc import Mapping

from dify_plugin import Endpoint
from werkzeug import Request, Response

from bridge.adapter import serve
from bridge.errors import Family
from bridge.protocols import webhook


class WebhookContinueEndpoint(Endpoint):
    def _invoke(self, r: Request, values: Mapping, settings: Mapping) -> Response:
        return serve(Family.DIFY, webhook.resume, r, settings, self.session)
