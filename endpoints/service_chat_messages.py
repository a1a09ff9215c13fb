"""POST /v1/chat-messages — Dify Service-API facade."""

from collections.abc import Mapping

from dify_plugin import Endpoint
from werkzeug import Request, Response

from bridge import service_api
from bridge.call import Call
from bridge.errors import Family
from bridge.guard import guarded


class ChatMessagesEndpoint(Endpoint):
    def _invoke(self, r: Request, values: Mapping, settings: Mapping) -> Response:
        return guarded(
            Family.DIFY,
            lambda: service_api.chat_messages(Call.from_request(r, settings, self.session)),
        )
