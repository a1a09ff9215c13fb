"""POST /extension — Dify's API-based Extension protocol."""

from collections.abc import Mapping

from dify_plugin import Endpoint
from werkzeug import Request, Response

from bridge.adapter import serve
from bridge.errors import Family
from bridge.protocols import extension


class ExtensionEndpoint(Endpoint):
    def _invoke(self, r: Request, values: Mapping, settings: Mapping) -> Response:
        return serve(Family.DIFY, extension.handle, r, settings, self.session)
