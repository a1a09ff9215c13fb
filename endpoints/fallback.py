"""Any method, any path no other route claims: a family-format 404 or 405."""

from collections.abc import Mapping

from dify_plugin import Endpoint
from werkzeug import Request, Response

from bridge.errors import error_response
from bridge.fallback import family_for_path, unrouted


class FallbackEndpoint(Endpoint):
    def _invoke(self, r: Request, values: Mapping, settings: Mapping) -> Response:
        error, headers = unrouted(r.method, r.path)
        response = error_response(error, family_for_path(r.path))
        response.headers.update(headers)
        return response
