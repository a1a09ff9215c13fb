"""POST /v1/chat/completions — OpenAI-compatible facade."""

from collections.abc import Mapping

from dify_plugin import Endpoint
from werkzeug import Request, Response

from bridge import openai_api
from bridge.call import Call
from bridge.errors import Family
from bridge.guard import guarded


class ChatCompletionsEndpoint(Endpoint):
    def _invoke(self, r: Request, values: Mapping, settings: Mapping) -> Response:
        return guarded(
            Family.OPENAI,
            lambda: openai_api.chat_completions(Call.from_request(r, settings, self.session)),
        )
