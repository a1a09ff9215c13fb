"""POST /v1/chat/completions — OpenAI-compatible facade."""

from collections.abc import Mapping

from dify_plugin import Endpoint
from werkzeug import Request, Response

from bridge.adapter import serve
from bridge.errors import Family
from bridge.protocols import openai_api


class ChatCompletionsEndpoint(Endpoint):
    def _invoke(self, r: Request, values: Mapping, settings: Mapping) -> Response:
        return serve(Family.OPENAI, openai_api.chat_completions, r, settings, self.session)
