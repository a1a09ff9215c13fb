"""The null endpoint: the SDK's own per-request cost, the benchmarks' baseline."""

from collections.abc import Mapping

from dify_plugin import Endpoint
from werkzeug import Request, Response


class NullEndpoint(Endpoint):
    def _invoke(self, r: Request, values: Mapping, settings: Mapping) -> Response:
        return Response(b"ok", content_type="text/plain")
