"""One write per message (issue 14).

``StdioResponseWriter.put`` writes a message and its blank line with one ``write`` and one flush
instead of two (the same bytes), serialising the SDK's own messages without building a
``StreamOutputMessage`` model for each (:func:`message_json`, the same bytes).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticSerializationError, to_json

from bridge.transport.sdk.verify import (
    source_of,
    verified_modules,
)

WRITER_MODULE = "dify_plugin.core.server.__base.response_writer"
STDIO_WRITER_MODULE = "dify_plugin.core.server.stdio.response_writer"
SEPARATE_WRITES = 'self.write("\\n\\n")'
_bound: dict[str, Any] = {}  # the SDK's StreamOutputMessage, bound by the install


def one_write_put(self: Any, event: Any, session_id: str | None = None, data: Any = None) -> None:
    """``ResponseWriter.put`` for stdout: the message and its blank line in one ``write`` (and
    one flush) instead of two — the same bytes, one syscall, one wake-up of the daemon's reader."""
    if isinstance(data, BaseModel):
        data = data.model_dump()
    self.write(message_json(event, session_id, data) + "\n\n")


def message_json(event: Any, session_id: Any, data: Any) -> str:
    """``StreamOutputMessage(event=…, session_id=…, data=…).model_dump_json()``.

    For what the SDK itself writes — an ``Event``, a ``str`` or no session id, a plain dict or
    no data — the model only validates that the values already are what they are and then
    serialises the dict: :func:`pydantic_core.to_json` of the same dict writes the same bytes
    (pydantic's serialiser, same defaults) without building and validating a model (~7 µs per
    message). Anything else, or a dict ``to_json`` cannot write, goes through the model."""
    if (
        type(event) is _bound["Event"]
        and (session_id is None or type(session_id) is str)
        and (data is None or type(data) is dict)
    ):
        try:
            message = {"event": event, "session_id": session_id, "data": data}
            return to_json(message, inf_nan_mode="null").decode()  # as models: ser_json_inf_nan
        except (PydanticSerializationError, ValueError, TypeError):
            pass  # the model raises its own error, or has a way the plain dict lacks
    message = _bound["StreamOutputMessage"](event=event, session_id=session_id, data=data)
    return message.model_dump_json()


def install_one_write(version: str | None = None) -> bool:
    modules = verified_modules(version, WRITER_MODULE, STDIO_WRITER_MODULE)
    if modules is None:
        return False
    base, stdio = modules
    writer = getattr(stdio, "StdioResponseWriter", None)
    put = getattr(writer, "put", None)
    if put is one_write_put:
        return True
    if put is not getattr(base.ResponseWriter, "put", None) or SEPARATE_WRITES not in source_of(
        put
    ):
        return False
    _bound["StreamOutputMessage"] = base.StreamOutputMessage
    _bound["Event"] = base.Event
    writer.put = one_write_put  # type: ignore[union-attr]
    return True
