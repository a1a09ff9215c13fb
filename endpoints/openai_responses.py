"""POST /v1/responses — OpenAI Responses API."""

from collections.abc import Mapping

from dify_plugin import Endpoint
from werkzeug import Request, Response

from bridge.protocols import openai_responses
from bridge.transport.adapter import serve
from bridge.transport.errors import Family


class ResponsesEndpoint(Endpoint):
    def _invoke(self, r: Request, values: Mapping, settings: Mapping) -> Response:
        return serve(Family.OPENAI, openai_responses.create, r, settings, self.session)
