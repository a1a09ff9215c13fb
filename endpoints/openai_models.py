"""GET /v1/models — OpenAI-compatible facade."""

from collections.abc import Mapping

from dify_plugin import Endpoint
from werkzeug import Request, Response

from bridge.adapter import serve
from bridge.errors import Family
from bridge.protocols import openai_api


class ModelsEndpoint(Endpoint):
    def _invoke(self, r: Request, values: Mapping, settings: Mapping) -> Response:
        return serve(Family.OPENAI, openai_api.models, r, settings, self.session)
