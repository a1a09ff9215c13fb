"""GET /v1/parameters — Dify Service-API facade."""

from collections.abc import Mapping

from dify_plugin import Endpoint
from werkzeug import Request, Response

from bridge.adapter import serve
from bridge.errors import Family
from bridge.protocols import service_api


class ParametersEndpoint(Endpoint):
    def _invoke(self, r: Request, values: Mapping, settings: Mapping) -> Response:
        return serve(Family.DIFY, service_api.parameters, r, settings, self.session)
