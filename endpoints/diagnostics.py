"""GET / — the diagnostics page."""

from collections.abc import Mapping

from dify_plugin import Endpoint
from werkzeug import Request, Response

from bridge.adapter import serve
from bridge.errors import Family
from bridge.protocols import diagnostics


class DiagnosticsEndpoint(Endpoint):
    def _invoke(self, r: Request, values: Mapping, settings: Mapping) -> Response:
        return serve(Family.DIFY, diagnostics.page, r, settings, self.session)
