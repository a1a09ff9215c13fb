"""Any method, any path no other route claims: a CORS preflight or a family-format 404/405."""

from collections.abc import Mapping

from dify_plugin import Endpoint
from werkzeug import Request, Response

from bridge.adapter import serve_unrouted


class FallbackEndpoint(Endpoint):
    def _invoke(self, r: Request, values: Mapping, settings: Mapping) -> Response:
        return serve_unrouted(r, settings)
