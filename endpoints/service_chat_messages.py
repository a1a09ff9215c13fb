"""POST /v1/chat-messages — Dify Service-API facade."""

from collections.abc import Mapping

from dify_plugin import Endpoint
from werkzeug import Request, Response

from bridge.adapter import serve
from bridge.errors import Family
from bridge.protocols import service_api


class ChatMessagesEndpoint(Endpoint):
    def _invoke(self, r: Request, values: Mapping, settings: Mapping) -> Response:
        return serve(Family.DIFY, service_api.chat_messages, r, settings, self.session)
