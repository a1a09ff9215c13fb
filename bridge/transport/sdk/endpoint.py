"""Seams around the SDK's endpoint request: how it is parsed, and the messages it answers with.

Unparseable requests (issue 10). ``PluginExecutor.invoke_endpoint`` turns the daemon's raw HTTP
bytes into a werkzeug ``Request`` with ``deserialize_request`` *before* any endpoint runs; what
it raises (a non-UTF-8 header byte, two ``Content-Type`` headers, a ``Host`` of ``a:b``, an
``_`` in a header name, ambiguous framing…) becomes a session error that the daemon writes,
traceback and all, into a 500. Here ``deserialize_request`` (as the executor's module sees it)
marks its failures as :class:`UnparseableRequest` — still a ``ValueError`` — and
``invoke_endpoint`` answers those with Dify's ``400 invalid_param``. Any other failure raised
out of the executor becomes a plain 500 before the first message, or ends the body after it:
logged by exception type, never a traceback in a response. The same wrapper sends a streamed
body's status and headers with its first chunk, as one message
(:func:`headers_with_first_chunk`; the daemon answers the caller only at the first chunk
anyway). Both wrappers only surround the SDK's own code, so they hold for any SDK with the same
two names.

Plain request heads without h11 (issue 14). Where dify_plugin is 0.10.2, h11 is 0.16.0 and
``deserialize_request`` is the verified source, the heads the daemon writes are parsed by
:mod:`bridge.transport.request_head` into the same environ, without the fresh ``h11.Connection``
the SDK builds per request (~60 µs); any other head goes to the SDK's parser, marked as above.
"""

from __future__ import annotations

import binascii
import functools
import importlib
import importlib.metadata
import inspect
import json
import logging
from collections.abc import Callable, Generator, Iterator
from typing import Any

from werkzeug import Request

from bridge.transport.request_head import environ_of
from bridge.transport.sdk.verify import (
    VERIFIED_SDK,
    sdk_version,
    source_digest,
)

logger = logging.getLogger(__name__)

EXECUTOR_MODULE = "dify_plugin.core.plugin_executor"
BAD_REQUEST_MESSAGE = "The HTTP request is malformed (request line, header or body framing)."


class UnparseableRequest(ValueError):
    """The daemon's raw HTTP request could not be parsed by the SDK."""


# -- unparseable requests ------------------------------------------------------------------


def _json_message(status: int, code: str, message: str) -> dict[str, object]:
    """An ``invoke_endpoint`` message: a whole response in Dify's error format."""
    body = json.dumps({"code": code, "message": message, "status": status}).encode()
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    return {"status": status, "headers": headers, "result": body.hex()}


def _marking(parse: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    @functools.wraps(parse)
    def deserialize_request(raw_data: bytes) -> Any:
        try:
            return parse(raw_data)
        except Exception as exc:  # whatever the parser raises, the request is at fault
            raise UnparseableRequest(type(exc).__name__) from exc

    deserialize_request.__bridge_seam__ = True  # type: ignore[attr-defined]
    return deserialize_request


def headers_with_first_chunk(messages: Iterator[dict]) -> Iterator[dict]:
    """``invoke_endpoint``'s messages, a streamed body's status and headers sent with its
    first chunk: one message, one write and one read fewer before the first byte.

    The SDK sends a generator body's ``{status, headers}`` as a message of its own, then one
    ``{result}`` per chunk. The daemon takes status and headers from every message up to the
    first with a ``result`` and answers the HTTP caller only then (``InvokeEndpoint``,
    ``io_tunnel/endpoint_service.go``) — as it does for the SDK's own one-message bodies,
    ``{status, headers, result}`` — so what the caller receives, and when, is unchanged.
    A body that ends (or fails) before its first chunk sends its headers alone (or fails as
    before any message).
    """
    first = next(messages, None)
    if first is None:
        return
    if "result" in first or "status" not in first:
        yield first
    else:
        chunk = next(messages, None)
        if chunk is not None and chunk.keys() == {"result"}:
            yield {**first, **chunk}
        else:
            yield first
            if chunk is not None:
                yield chunk
    yield from messages


def _answering(invoke: Callable[..., Iterator[dict]]) -> Callable[..., Iterator[dict]]:
    @functools.wraps(invoke)
    def invoke_endpoint(self: Any, session: Any, data: Any) -> Generator[dict, None, None]:
        messages = invoke(self, session, data)
        started = False
        try:
            for message in headers_with_first_chunk(messages):
                started = True
                yield message
        except Exception as exc:  # noqa: BLE001 - no traceback may reach the caller
            if not started and isinstance(exc, UnparseableRequest | binascii.Error):
                cause = exc.__cause__ or exc
                logger.warning("unparseable endpoint request refused: %s", type(cause).__name__)
                yield _json_message(400, "invalid_param", BAD_REQUEST_MESSAGE)
            else:
                logger.error("endpoint request failed in the SDK: %s", type(exc).__name__)  # noqa: TRY400
                if not started:
                    yield _json_message(500, "internal_server_error", "Internal Server Error.")
        finally:
            close = getattr(messages, "close", None)
            if close is not None:
                close()

    invoke_endpoint.__bridge_seam__ = True  # type: ignore[attr-defined]
    return invoke_endpoint


def install_request_seam(module_name: str = EXECUTOR_MODULE) -> bool:
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return False
    executor = getattr(module, "PluginExecutor", None)
    parse = getattr(module, "deserialize_request", None)
    invoke = getattr(executor, "invoke_endpoint", None)
    if not callable(parse) or not callable(invoke):
        logger.warning("dify_plugin %s: request parsing seam not found", sdk_version())
        return False
    if getattr(invoke, "__bridge_seam__", False):
        return True
    module.deserialize_request = _marking(parse)  # type: ignore[attr-defined]
    executor.invoke_endpoint = _answering(invoke)  # type: ignore[union-attr]
    return True


# -- plain request heads without h11 ------------------------------------------------------

# what bridge.transport.request_head reproduces: 0.10.2's deserialize_request over h11 0.16
PARSER_SOURCE = "8fda2fe3cfd08d6622bba84bede528776c6588779673193f59b5b2a9e9276de3"
VERIFIED_H11 = "0.16.0"


def plain_heads_verified(parse: Any, version: str | None = None) -> bool:
    """Whether :func:`bridge.transport.request_head.environ_of` builds what ``parse`` does:
    the SDK and h11 it was verified on, and the SDK's parser unchanged."""
    try:
        h11_version = importlib.metadata.version("h11")
    except importlib.metadata.PackageNotFoundError:
        return False
    return (
        (version or sdk_version()) == VERIFIED_SDK
        and h11_version == VERIFIED_H11
        and source_digest(parse) == PARSER_SOURCE
    )


def _plain_heads_first(parse: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    """``deserialize_request``: a plain head without h11, anything else by ``parse``."""

    @functools.wraps(parse)
    def deserialize_request(raw_data: bytes) -> Any:
        environ = environ_of(raw_data)
        return parse(raw_data) if environ is None else Request(environ)

    deserialize_request.__bridge_plain_heads__ = True  # type: ignore[attr-defined]
    return deserialize_request


def install_plain_heads(version: str | None = None, module_name: str = EXECUTOR_MODULE) -> bool:
    """Put :func:`_plain_heads_first` before the executor's (marked) ``deserialize_request``."""
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return False
    parse = getattr(module, "deserialize_request", None)
    if getattr(parse, "__bridge_plain_heads__", False):
        return True
    if not callable(parse) or not plain_heads_verified(inspect.unwrap(parse), version):
        return False
    module.deserialize_request = _plain_heads_first(parse)  # type: ignore[attr-defined]
    return True
