"""One endpoint request, as the core sees it: plain data plus the session's capabilities.

Endpoints build a :class:`Call` from the werkzeug request, the settings mapping and the SDK
session; protocol modules only ever see the :class:`Call`.

What a route may not need — the body, its media type, the query arguments, the app gateway and
the storage records — is taken from the request or the session on first use, once: a
``GET /v1/models`` parses no query string and builds no storage helper, and the gateway looks
``session.app`` up only to run or fetch an app, so a route answered from memory (cached
parameters, a known mode) never has the SDK build its app helpers (issue #14).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from werkzeug import Request
from werkzeug.datastructures import ImmutableMultiDict

from bridge.app.gateway import AppGateway
from bridge.config.auth import HeaderMap, authenticate
from bridge.config.settings import Settings, parse_settings_and_text
from bridge.storage.conversations import Conversations
from bridge.storage.records import Records

_NO_ARGS: ImmutableMultiDict[str, str] = ImmutableMultiDict()


@dataclass(frozen=True)
class Call:
    settings: Settings
    raw_settings: Mapping[str, Any]
    settings_text: str | None  # the raw settings' JSON text (None: not plain JSON values)
    endpoint_id: str
    method: str
    path: str
    headers: HeaderMap
    _request: Request = field(repr=False)
    _session: Any = field(repr=False)

    @classmethod
    def from_request(cls, request: Request, settings: Mapping, session: Any) -> Call:
        parsed, text = parse_settings_and_text(settings)
        return cls(
            settings=parsed,
            raw_settings=settings,
            settings_text=text,
            endpoint_id=session.endpoint_id or "",
            method=request.method,
            path=request.path,
            headers=request.headers,
            _request=request,
            _session=session,
        )

    # cached_property writes the instance's __dict__ directly, which a frozen dataclass allows
    @functools.cached_property
    def body(self) -> bytes:
        return self._request.get_data()

    @functools.cached_property
    def mimetype(self) -> str:
        return self._request.mimetype

    @functools.cached_property
    def args(self) -> Mapping[str, str]:
        # most requests carry no query string: nothing to parse
        return self._request.args if self._request.query_string else _NO_ARGS

    @functools.cached_property
    def gateway(self) -> AppGateway:
        session = self._session
        return AppGateway(lambda: session.app, scope=self.endpoint_id)

    @functools.cached_property
    def records(self) -> Records:
        return Records(self._session.storage, self._session.endpoint_id)

    def authenticate(self) -> None:
        authenticate(self.settings, self.headers)

    @property
    def conversations(self) -> Conversations:
        return Conversations(self.records)
