"""POST /extension — Dify's API-based Extension protocol."""

from collections.abc import Mapping

from dify_plugin import Endpoint
from werkzeug import Request, Response

from bridge import extension
from bridge.call import Call
from bridge.errors import Family
from bridge.guard import guarded


class ExtensionEndpoint(Endpoint):
    def _invoke(self, r: Request, values: Mapping, settings: Mapping) -> Response:
        return guarded(
            Family.DIFY, lambda: extension.handle(Call.from_request(r, settings, self.session))
        )
