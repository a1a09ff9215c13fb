"""GET /v1/models — OpenAI-compatible facade."""

from collections.abc import Mapping

from dify_plugin import Endpoint
from werkzeug import Request, Response

from bridge import openai_api
from bridge.call import Call
from bridge.errors import Family
from bridge.guard import guarded


class ModelsEndpoint(Endpoint):
    def _invoke(self, r: Request, values: Mapping, settings: Mapping) -> Response:
        return guarded(
            Family.OPENAI, lambda: openai_api.models(Call.from_request(r, settings, self.session))
        )
