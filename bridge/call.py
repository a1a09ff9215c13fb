"""One endpoint request, as the core sees it: plain data plus the session's capabilities.

Endpoints build a :class:`Call` from the werkzeug request, the settings mapping and the SDK
session; protocol modules only ever see the :class:`Call`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from werkzeug import Request

from bridge.app.gateway import AppGateway
from bridge.config.auth import HeaderMap, authenticate
from bridge.config.settings import Settings, parse_settings
from bridge.storage.conversations import Conversations
from bridge.storage.records import Records


@dataclass(frozen=True)
class Call:
    settings: Settings
    raw_settings: Mapping[str, Any]
    endpoint_id: str
    method: str
    path: str
    headers: HeaderMap
    args: Mapping[str, str]
    body: bytes
    mimetype: str
    gateway: AppGateway
    records: Records

    @classmethod
    def from_request(cls, request: Request, settings: Mapping, session: Any) -> Call:
        return cls(
            settings=parse_settings(settings),
            raw_settings=settings,
            endpoint_id=session.endpoint_id or "",
            method=request.method,
            path=request.path,
            headers=request.headers,
            args=request.args,
            body=request.get_data(),
            mimetype=request.mimetype,
            gateway=AppGateway(session.app, scope=session.endpoint_id or ""),
            records=Records(session.storage, session.endpoint_id),
        )

    def authenticate(self) -> None:
        authenticate(self.settings, self.headers)

    @property
    def conversations(self) -> Conversations:
        return Conversations(self.records)
