"""GET / — the diagnostics page."""

from collections.abc import Mapping

from dify_plugin import Endpoint
from werkzeug import Request, Response

from bridge.auth import is_authenticated
from bridge.diagnostics import render_page
from bridge.errors import Family
from bridge.guard import guarded
from bridge.public_url import endpoint_base_url
from bridge.responses import html_response
from bridge.settings import parse_settings


class DiagnosticsEndpoint(Endpoint):
    def _invoke(self, r: Request, values: Mapping, settings: Mapping) -> Response:
        def handle() -> Response:
            parsed = parse_settings(settings)
            page = render_page(
                base=endpoint_base_url(r.headers, "/"),
                settings=parsed,
                raw_settings=dict(settings),
                authenticated=is_authenticated(parsed, r.headers),
            )
            return html_response(page)

        return guarded(Family.DIFY, handle)
