"""GET / — the diagnostics page."""

from collections.abc import Mapping

from dify_plugin import Endpoint
from werkzeug import Request, Response

from bridge.protocols import diagnostics
from bridge.transport.adapter import serve
from bridge.transport.errors import Family


class DiagnosticsEndpoint(Endpoint):
    def _invoke(self, r: Request, values: Mapping, settings: Mapping) -> Response:
        return serve(Family.DIFY, diagnostics.page, r, settings, self.session)
