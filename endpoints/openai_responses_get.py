"""GET /v1/responses/{response_id} — OpenAI Responses API: a stored response."""

from collections.abc import Mapping

from dify_plugin import Endpoint
from werkzeug import Request, Response

from bridge.adapter import serve
from bridge.errors import Family
from bridge.protocols import openai_responses


class RetrieveResponseEndpoint(Endpoint):
    def _invoke(self, r: Request, values: Mapping, settings: Mapping) -> Response:
        return serve(Family.OPENAI, openai_responses.retrieve, r, settings, self.session)
