"""Seams into the plugin SDK (``dify_plugin``), each checked before use so that an SDK that
changed under it keeps its own behaviour. ``main.py`` calls :func:`install` before it builds
the ``Plugin``; ``tests/unit/test_sdk_seams.py`` pins each seam to the SDK it was verified on.

Unparseable requests (issue 10). ``PluginExecutor.invoke_endpoint`` turns the daemon's raw
HTTP bytes into a werkzeug ``Request`` with ``deserialize_request`` *before* any endpoint
runs; what it raises (a non-UTF-8 header byte, two ``Content-Type`` headers, a ``Host`` of
``a:b``, an ``_`` in a header name, ambiguous framing…) becomes a session error that the
daemon writes, traceback and all, into a 500. Here ``deserialize_request`` (as the executor's
module sees it) marks its failures as :class:`UnparseableRequest` — still a ``ValueError``
— and ``invoke_endpoint`` answers those with Dify's ``400 invalid_param``. Any other failure
raised out of the executor becomes a plain 500 before the first message, or ends the body
after it: logged by exception type, never a traceback in a response. The same wrapper sends a
streamed body's status and headers with its first chunk, as one message
(:func:`headers_with_first_chunk`; the daemon answers the caller only at the first chunk
anyway). Both wrappers only surround the SDK's own code, so they hold for any SDK with the
same two names.

Plain request heads without h11 (issue 14). Where dify_plugin is 0.10.2, h11 is 0.16.0 and
``deserialize_request`` is the verified source, the heads the daemon writes are parsed by
:mod:`bridge.transport.request_head` into the same environ, without the fresh
``h11.Connection`` the SDK builds per request (~60 µs); any other head goes to the SDK's parser,
marked as above.

One ``TypeAdapter`` (issue 14). dify_plugin 0.10.2's line readers (stdio, TCP, and the HTTP
backwards-invocation reader) build ``TypeAdapter(dict[str, Any])`` afresh for every line they
parse — a schema build costing ~15-20x the parse itself. Where the SDK is exactly 0.10.2 and
the module still names pydantic's ``TypeAdapter``, that name is replaced by a factory that
returns one cached adapter for ``dict[str, Any]`` (validation is identical; adapters are
immutable and thread-safe) and a fresh ``TypeAdapter`` for anything else.

Stdin without the threadpool (issue 14). ``StdioRequestReader._read_async`` reads stdin with
``gevent.os.tp_read``: every read is handed to a native thread of gevent's threadpool and
its result handed back to the hub — ~80 µs of CPU per read, and a storage round trip brings
two or three reads. Where stdin is the read end of a pipe of its own (as the daemon starts
plugins; not shared with stdout/stderr), :func:`cooperative_read` makes it non-blocking and
reads it as ``gevent.os.nb_read`` does (the hub's I/O watcher wakes the reader, other
greenlets run meanwhile), with one watcher kept for the descriptor instead of one built and
closed per wait; anything else, and an empty read (end of file), goes through ``tp_read`` as
before. One write per message: ``StdioResponseWriter.put`` writes a message and its blank
line with one ``write`` and one flush instead of two (the same bytes), serialising the SDK's
own messages without building a ``StreamOutputMessage`` model for each (:func:`message_json`,
the same bytes).

Backwards answers by request id (issue 14). For every backwards invocation (an app run, each
storage call) the SDK registers a ``FilterReader`` — a queue with its condition variables —
and the stdin reader offers every line to every registered reader's filter, under a lock, to
find the one waiting for it. In 0.10.2 the only readers are those invocations (each matching
its own request id) and the listener for new requests, so an answer can go straight to its
invocation: :func:`routed_backwards_invoke` waits on an inbox registered under its request id
(before the invoke is written), :func:`routed_process_line` puts an answer there, and any other
line goes through the SDK's own dispatch. The messages written, the waiting in one-second
rounds and what the invocation raises are the SDK's (its ``_line_converter_wrapper`` reads the
inbox).

Storage calls without the generator layers (issue 14). Each ``session.storage`` call reaches
its one answer through three generators (``_backwards_invoke``, the routed invoke,
``_line_converter_wrapper``), a ``SessionMessage`` model for the invoke and a
``BackwardsInvocationResponseEvent`` model for the answer. Where answers are routed by
request id, :func:`first_answer` writes the same invoke and takes the first answer from the
same inbox, reading an answer of the daemon's plain shape as it is (any other through the
SDK's model); the four calls then return and raise as the SDK's (``tests/unit`` runs both on
the same answers). Outside stdio and remote debugging the SDK's calls run as they are.
"""

from __future__ import annotations

import binascii
import collections
import functools
import hashlib
import importlib
import importlib.metadata
import inspect
import json
import logging
import os
import stat
import sys
import textwrap
from collections.abc import Callable, Generator, Iterator
from typing import Any

import gevent
from gevent import monkey
from gevent import os as gevent_os
from gevent.hub import Waiter
from pydantic import BaseModel, TypeAdapter
from pydantic_core import PydanticSerializationError, to_json
from werkzeug import Request

from bridge.transport.request_head import environ_of

logger = logging.getLogger(__name__)

VERIFIED_SDK = "0.10.2"
EXECUTOR_MODULE = "dify_plugin.core.plugin_executor"
LINE_READER_MODULES = (
    "dify_plugin.core.server.stdio.request_reader",
    "dify_plugin.core.server.tcp.request_reader",
    "dify_plugin.core.runtime",
)
BAD_REQUEST_MESSAGE = "The HTTP request is malformed (request line, header or body framing)."

_installed: dict[str, bool] = {}


class UnparseableRequest(ValueError):
    """The daemon's raw HTTP request could not be parsed by the SDK."""


def sdk_version() -> str:
    try:
        return importlib.metadata.version("dify_plugin")
    except importlib.metadata.PackageNotFoundError:
        return ""


def _verified_modules(version: str | None, *names: str) -> list[Any] | None:
    """The named SDK modules — or None unless the SDK is the verified version and has them."""
    if (version or sdk_version()) != VERIFIED_SDK:
        return None
    try:
        return [importlib.import_module(name) for name in names]
    except ImportError:
        return None


def _source(function: Any) -> str:
    """A function's source ("" when it has none)."""
    try:
        return inspect.getsource(function)
    except (OSError, TypeError):
        return ""


def install() -> dict[str, bool]:
    """Install every seam whose preconditions hold; which ones are active, by name."""
    if not _installed:
        _installed["unparseable_requests"] = _install_request_seam()
        _installed["plain_request_heads"] = _install_plain_heads()
        _installed["cached_type_adapter"] = _install_type_adapter()
        _installed["cooperative_stdin"] = _install_stdin_reader()
        _installed["one_write_per_message"] = _install_one_write()
        _installed["invocations_on_first_use"] = _install_lazy_invocations()
        _installed["answers_by_request_id"] = _install_routed_answers()
        _installed["direct_storage_calls"] = _install_direct_storage()
    return dict(_installed)


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


def _install_request_seam(module_name: str = EXECUTOR_MODULE) -> bool:
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


def _install_plain_heads(version: str | None = None, module_name: str = EXECUTOR_MODULE) -> bool:
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


# -- one TypeAdapter per process -----------------------------------------------------------

_DICT_OF_ANY = dict[str, Any]
_DICT_ADAPTER: TypeAdapter[dict[str, Any]] = TypeAdapter(_DICT_OF_ANY)


def cached_type_adapter(type_: Any, *args: Any, **kwargs: Any) -> TypeAdapter[Any]:
    """``TypeAdapter(type_, ...)``, built once for the ``dict[str, Any]`` of every line."""
    if not args and not kwargs and type_ == _DICT_OF_ANY:
        return _DICT_ADAPTER
    return TypeAdapter(type_, *args, **kwargs)


def _install_type_adapter(version: str | None = None) -> bool:
    modules = _verified_modules(version, *LINE_READER_MODULES)
    if modules is None or any(
        getattr(module, "TypeAdapter", None) not in (TypeAdapter, cached_type_adapter)
        for module in modules
    ):
        return False
    for module in modules:
        module.TypeAdapter = cached_type_adapter
    return True


# -- stdin read without the threadpool -------------------------------------------------------

STDIO_READER_MODULE = "dify_plugin.core.server.stdio.request_reader"
STDIO_READ_CALL = "return tp_read(sys.stdin.fileno(), 65536)"
READ_SIZE = 65536
_pipes: dict[int, bool] = {}


def _readable_pipe(fd: int) -> bool:
    """Whether ``fd`` is the read end of a pipe of its own (not shared with stdout or
    stderr), now in non-blocking mode: then the hub can wait for it like for a socket."""
    known = _pipes.get(fd)
    if known is None:
        known = False
        try:
            info = os.fstat(fd)
            others = {(o.st_dev, o.st_ino) for o in map(_fstat_or_none, (1, 2)) if o}
            if stat.S_ISFIFO(info.st_mode) and (info.st_dev, info.st_ino) not in others:
                gevent_os.make_nonblocking(fd)
                known = True
        except (OSError, ValueError):
            known = False
        _pipes[fd] = known
    return known


def _fstat_or_none(fd: int) -> os.stat_result | None:
    try:
        return os.fstat(fd)
    except OSError:
        return None


def cooperative_read(self: Any) -> bytes:
    """``StdioRequestReader._read_async``: a pipe is read when the hub says it is readable
    (no threadpool hand-off per read); anything else, and end of file, as the SDK reads."""
    fd = sys.stdin.fileno()
    if _readable_pipe(fd):
        data = _read_when_readable(fd)
        if data:
            return data
    return gevent_os.tp_read(fd, READ_SIZE)


_watchers: dict[int, Any] = {}  # fd -> the hub's read watcher for it, kept between reads


def _read_when_readable(fd: int) -> bytes:
    """``gevent.os.nb_read(fd, READ_SIZE)`` with one read watcher per descriptor, kept: its
    own builds a watcher for each wait and closes it after (an ``epoll_ctl`` and an ``fcntl``
    per wait; docs/sdk-stdin.md). Another greenlet reading the same descriptor at once gets
    ``nb_read`` itself."""
    while True:
        try:
            return os.read(fd, READ_SIZE)
        except BlockingIOError:
            pass
        hub = gevent.get_hub()
        watcher = _watchers.get(fd)
        if watcher is None or watcher.loop is not hub.loop:
            watcher = _watchers[fd] = hub.loop.io(fd, 1)
        if watcher.callback is not None:  # waited on already: not ours to share
            return gevent_os.nb_read(fd, READ_SIZE)
        hub.wait(watcher)


def _install_stdin_reader(version: str | None = None) -> bool:
    modules = _verified_modules(version, STDIO_READER_MODULE)
    if modules is None:
        return False
    reader = getattr(modules[0], "StdioRequestReader", None)
    read = getattr(reader, "_read_async", None)
    if read is cooperative_read:
        return True
    if STDIO_READ_CALL not in _source(read):
        return False
    reader._read_async = cooperative_read  # type: ignore[union-attr]
    return True


# -- one write per message -------------------------------------------------------------------

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


def _install_one_write(version: str | None = None) -> bool:
    modules = _verified_modules(version, WRITER_MODULE, STDIO_WRITER_MODULE)
    if modules is None:
        return False
    base, stdio = modules
    writer = getattr(stdio, "StdioResponseWriter", None)
    put = getattr(writer, "put", None)
    if put is one_write_put:
        return True
    if put is not getattr(base.ResponseWriter, "put", None) or SEPARATE_WRITES not in _source(put):
        return False
    _bound["StreamOutputMessage"] = base.StreamOutputMessage
    _bound["Event"] = base.Event
    writer.put = one_write_put  # type: ignore[union-attr]
    return True


# -- a session's invocation helpers built on first use -----------------------------------------

RUNTIME_MODULE = "dify_plugin.core.runtime"
# the SHA-256 of the dedented source, in dify_plugin 0.10.2, of what builds a session's
# invocation helpers: none but these may run for the helpers to be built later
VERIFIED_SOURCES = {
    "Session._register_invocations": (
        "a52af5c5f5b0e3eff4fb572be5e7e9c33417897f71bc7e8fb83fe56eca4b4ce5"
    ),
    "ModelInvocations.__init__": "966f9e3f2c61b35f740e8eec859f2e0bcec36db154ea67a13a75901893b3d6b2",
    "AppInvocations.__init__": "5a6a5ad8735e328fc50f11d6782c596fc0db4611140e33f1eb99bda763abb8a3",
    "WorkflowNodeInvocations.__init__": (
        "16878dc9d9607c3bc2bda537d03642304e5c10298df35d12f8ab6b0dc9a357c9"
    ),
    "BackwardsInvocation.__init__": (
        "867fe752c74b5f1334036515fb87e6b13fa6069f238fb8eb2063853744514dfe"
    ),
}


def source_digest(function: Any) -> str:
    """The SHA-256 of a function's dedented source ("" when it has none)."""
    source = _source(function)
    return hashlib.sha256(textwrap.dedent(source).encode()).hexdigest() if source else ""


def sources_match(expected: dict[str, str], functions: dict[str, Any]) -> bool:
    """Whether each named function's :func:`source_digest` is the one ``expected`` names."""
    return {name: source_digest(function) for name, function in functions.items()} == expected


def _register_invocations(self: Any) -> None:
    """``Session._register_invocations``: nothing here — each helper (``model``, ``tool``,
    ``app``, ``workflow_node``, ``storage``, ``file``) is built on first use instead."""


_register_invocations.__bridge_seam__ = True  # type: ignore[attr-defined]
_replaced: dict[str, Any] = {}  # the SDK's own functions, by name, once replaced


def invocation_factories(runtime: Any) -> dict[str, Any]:
    """What 0.10.2's ``_register_invocations`` builds, by attribute name."""
    from dify_plugin.invocations.file import File  # noqa: PLC0415 - the SDK imports them late
    from dify_plugin.invocations.storage import StorageInvocation  # noqa: PLC0415
    from dify_plugin.invocations.tool import ToolInvocation  # noqa: PLC0415

    return {
        "model": runtime.ModelInvocations,
        "tool": ToolInvocation,
        "app": runtime.AppInvocations,
        "workflow_node": runtime.WorkflowNodeInvocations,
        "storage": StorageInvocation,
        "file": File,
    }


def _sources_verified(runtime: Any, register: Any) -> bool:
    functions = {"Session._register_invocations": register}
    for name in VERIFIED_SOURCES:
        owner, _, method = name.partition(".")
        if owner != "Session":
            functions[name] = getattr(getattr(runtime, owner, None), method, None)
    return sources_match(VERIFIED_SOURCES, functions)


def _install_lazy_invocations(version: str | None = None) -> bool:
    """Every ``Session`` (one per request) built all 17 invocation helpers and ran 7 imports
    (~17 µs); a request uses one or two. Each helper only keeps the session, so building it on
    first use (``functools.cached_property``: once per session, then a plain attribute) is
    the same object graph, later."""
    modules = _verified_modules(version, RUNTIME_MODULE)
    if modules is None:
        return False
    runtime = modules[0]
    session = getattr(runtime, "Session", None)
    register = getattr(session, "_register_invocations", None)
    if register is _register_invocations:
        return True
    if not isinstance(session, type) or not _sources_verified(runtime, register):
        return False
    for name, factory in invocation_factories(runtime).items():
        helper = functools.cached_property(factory)
        helper.__set_name__(session, name)
        setattr(session, name, helper)
    _replaced["Session._register_invocations"] = register
    session._register_invocations = _register_invocations  # type: ignore[attr-defined]
    return True


# -- backwards answers by request id ----------------------------------------------------------

READER_MODULE = "dify_plugin.core.server.__base.request_reader"
FILTER_READER_MODULE = "dify_plugin.core.server.__base.filter_reader"
IO_MODULE = "dify_plugin.core.entities.plugin.io"
IO_SERVER_MODULE = "dify_plugin.core.server.io_server"
ROUTES = "_bridge_answer_routes"  # on a reader: request id -> the inbox of its invocation
# the SHA-256 of the dedented source, in dify_plugin 0.10.2, of what routing replaces and of
# every reader the SDK registers (none but an invocation's may want a backwards answer)
ROUTING_SOURCES = {
    "BackwardsInvocation._full_duplex_backwards_invoke": (
        "af127085f2984dfeea5eb8366a34d21fb89159fcc9d65d9e504c2fe157f87801"
    ),
    "RequestReader._process_line": (
        "cc49029853a9738e92f1fbf87ef623524075f9ed15fa6625387a07bec92b22ec"
    ),
    "RequestReader.read": "70afdca47a6ada2f63f84aeb67384e295a9729b0d2a88dabca4e7956998b2828",
    "FilterReader.read": "3d630bd2b9e5d6985cef72bf1df4e095fca56472f96c11d0a1cb125f00fa2c23",
    "IOServer._setup_instruction_listener": (
        "8592927eef27b89ce15967b86ef4a048bfe2ef319170790f1fc48381b0e132b0"
    ),
}
_routing: dict[str, Any] = {}  # the answer event and the two SDK functions replaced, once bound


class Inbox:
    """One invocation's answers: ``FilterReader``'s ``write`` and ``read``, for greenlets of one
    hub (the reader's and the invocation's).

    A ``gevent.queue.Queue`` read with a timeout builds a ``Timeout`` for every wait (and the
    queue one per invocation): ~50 µs of the ~75 a wait and its wake-up took with it
    (``docs/performance.md``). Here an answer waits in a deque, and a waiting read is woken
    from the hub — by the answer, as a queue's getter is, or by a timer at the round's end."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: collections.deque[Any] = collections.deque()
        self._waiter: Waiter | None = None

    def write(self, data: Any) -> None:
        self._items.append(data)
        waiter = self._waiter
        if waiter is not None:  # a read waits: wake it from the hub once this greenlet yields
            self._waiter = None
            waiter.hub.loop.run_callback(waiter.switch, None)

    def read(self, timeout_for_round: float) -> Iterator[Any]:
        """Each answer as it comes, and None for each round of ``timeout_for_round`` seconds
        without one (the SDK's wrapper counts those against its timeout)."""
        items = self._items
        while True:
            if not items:
                waiter: Waiter = Waiter()
                self._waiter = waiter
                timer = waiter.hub.loop.timer(timeout_for_round)
                timer.start(waiter.switch, None)
                try:
                    waiter.get()
                finally:
                    timer.close()
                    self._waiter = None
            yield items.popleft() if items else None


def routes_of(reader: Any) -> dict[str, Inbox]:
    """The inboxes of the invocations waiting on ``reader``, by request id."""
    routes = reader.__dict__.get(ROUTES)
    if routes is None:
        routes = reader.__dict__[ROUTES] = {}
    return routes


def routed_backwards_invoke(
    self: Any,
    backwards_request_id: str,
    type: Any,  # noqa: A002 - the SDK's parameter name
    data_type: Any,
    data: dict,
) -> Generator[Any, None, None]:
    """``BackwardsInvocation._full_duplex_backwards_invoke``: the same invoke message and the
    SDK's own answer handling, the answers taken from an inbox registered before the write."""
    session = _session_of(self)
    with _Route(session, backwards_request_id) as inbox:
        session.writer.session_message(
            session_id=session.session_id,
            data=session.writer.stream_invoke_object(
                data={
                    "type": type.value,
                    "backwards_request_id": backwards_request_id,
                    "request": data,
                }
            ),
        )
        yield from self._line_converter_wrapper(inbox.read(timeout_for_round=1), data_type)


def _session_of(invocation: Any) -> Any:
    """The invocation's session, or the SDK's error for an invocation without one."""
    session = invocation.session
    if not session:
        msg = "current tool runtime does not support backwards invoke"
        raise Exception(msg)  # noqa: TRY002 - as the SDK raises it
    return session


class _Route:
    """An inbox registered under a request id on the session's reader before the invoke is
    written, and unregistered when the invocation is done with it."""

    __slots__ = ("_request_id", "_routes", "inbox")

    def __init__(self, session: Any, request_id: str) -> None:
        self._routes = routes_of(session.reader)
        self._request_id = request_id
        self.inbox = self._routes[request_id] = Inbox()

    def __enter__(self) -> Inbox:
        return self.inbox

    def __exit__(self, *exc_info: object) -> None:
        self._routes.pop(self._request_id, None)


def routed_process_line(self: Any, data: Any) -> None:
    """``RequestReader._process_line``: an answer whose invocation waits goes to its inbox;
    every other line to the SDK's readers, as before."""
    if data.event is _routing["answer"]:
        routes = self.__dict__.get(ROUTES)
        if routes:
            inbox = routes.get(data.data.get("backwards_request_id"))
            if inbox is not None:
                inbox.write(data)
                return
    _routing["process_line"](self, data)


def waits_for_answer(reader: Any, request_id: str) -> bool:
    """Whether an invocation on ``reader`` waits for ``request_id``'s answers by its route."""
    return request_id in reader.__dict__.get(ROUTES, {})


def _install_routed_answers(version: str | None = None) -> bool:
    if not monkey.is_module_patched("threading"):  # the inbox waits on the hub
        return False
    modules = _verified_modules(
        version, READER_MODULE, FILTER_READER_MODULE, RUNTIME_MODULE, IO_MODULE, IO_SERVER_MODULE
    )
    if modules is None:
        return False
    base, filters, runtime, io_module, io_server = modules
    reader, invocation = base.RequestReader, runtime.BackwardsInvocation
    if reader._process_line is routed_process_line:
        return True
    filter_reader = filters.FilterReader
    invoke = invocation._full_duplex_backwards_invoke
    functions = {
        "BackwardsInvocation._full_duplex_backwards_invoke": invoke,
        "RequestReader._process_line": reader._process_line,
        "RequestReader.read": reader.read,
        "FilterReader.read": filter_reader.read,
        "IOServer._setup_instruction_listener": io_server.IOServer._setup_instruction_listener,
    }
    if not sources_match(ROUTING_SOURCES, functions):
        return False
    _routing["answer"] = io_module.PluginInStreamEvent.BackwardInvocationResponse
    _routing["process_line"] = reader._process_line
    _routing["original_invoke"] = invocation._full_duplex_backwards_invoke
    reader._process_line = routed_process_line
    invocation._full_duplex_backwards_invoke = routed_backwards_invoke
    return True


# -- storage calls without the generator layers -----------------------------------------------

STORAGE_MODULE = "dify_plugin.invocations.storage"
# the SHA-256 of the dedented source, in dify_plugin 0.10.2, of what the direct calls stand in
# for: the four storage calls, the dispatch they go through and the answer handling after it
STORAGE_SOURCES = {
    "StorageInvocation.get": "f8eee226ebb70236329a7b77d1ce4f07cb53fe69abe56e4c1349ccaa58b252ad",
    "StorageInvocation.set": "d007abd7db1d6e16586ffef6d1733c2cd19ac3d6b954ff04d6934608123b3968",
    "StorageInvocation.delete": (
        "6bcf34609eb94bc21deba9fbc24b802c4927733a622a469f526344478375075c"
    ),
    "StorageInvocation.exist": "d30357a47d2c5f8b11e62083e19d263f330322dd49a71ec0f9169d482e4abce4",
    "BackwardsInvocation._backwards_invoke": (
        "618c446b873fe4d7971356d8166db5b6b4b2907449ae950a7968caa819712dab"
    ),
    "BackwardsInvocation._line_converter_wrapper": (
        "14dccee1356f9bdd57d10ba47fb76c9f66cb876dc2436ea9462944c3c9be1813"
    ),
    "BackwardsInvocationResponseEvent": (
        "c537bf3a8c1832f5901a1435e29d99bcd707b84b99155cf0ba3c8ce54502d503"
    ),
}
_storage: dict[str, Any] = {}  # the SDK's pieces the direct calls use, once bound
_ANSWER_EVENTS = frozenset({"response", "error", "end"})


def first_answer(invocation: Any, request: dict) -> dict | None:
    """The data of a storage invocation's first answer, or None when its answers end without
    any: what ``StorageInvocation``'s calls take from ``_backwards_invoke`` (their ``for`` loop
    returns at the first), with the same invoke message, rounds, timeout and errors.

    The SDK reaches that answer through three generators (its dispatch, the routed invoke and
    ``_line_converter_wrapper``), a ``SessionMessage`` model for the invoke and a
    ``BackwardsInvocationResponseEvent`` model for each answer; here the invoke is the same
    dict and an answer of the daemon's plain shape is read as it is (any other shape through
    the SDK's model, which raises what it raises)."""
    session = _session_of(invocation)
    request_id = invocation._generate_backwards_request_id()
    with _Route(session, request_id) as inbox:
        session.writer.session_message(
            session_id=session.session_id,
            data={
                "type": "invoke",
                "data": {"type": "storage", "backwards_request_id": request_id, "request": request},
            },
        )
        rounds = 0
        limit = session.max_invocation_timeout
        for chunk in inbox.read(timeout_for_round=1):
            if chunk is None:
                rounds += 1
                if rounds >= limit:
                    msg = f"invocation exited without response after {limit} seconds"
                    raise Exception(msg)  # noqa: TRY002 - as the SDK raises it
                continue
            event, message, data = _answer_of(chunk.data)
            if event == "end":
                return None
            if event == "error":
                raise Exception(message)  # noqa: TRY002 - as the SDK raises it
            return data
    return None  # unreachable: the inbox's rounds never end


def _answer_of(fields: Any) -> tuple[str, str, dict | None]:
    """An answer's event, message and data, as ``BackwardsInvocationResponseEvent`` reads them."""
    if (
        type(fields) is dict
        and type(fields.get("backwards_request_id")) is str
        and fields.get("event") in _ANSWER_EVENTS
        and type(fields.get("message")) is str
        and "data" in fields
        and (fields["data"] is None or type(fields["data"]) is dict)
    ):
        return fields["event"], fields["message"], fields["data"]
    event = _storage["Event"](**fields)  # anything else: the SDK's model decides (or raises)
    return event.event.value, event.message, event.data


def _error(message: str) -> Exception:
    return _storage["StorageInvocationError"](message)


def direct_get(self: Any, key: str) -> bytes:
    """``StorageInvocation.get``, its answer taken by :func:`first_answer`."""
    if not _direct(self):
        return _storage["get"](self, key)
    return binascii.unhexlify(_found(first_answer(self, {"opt": "get", "key": key})))


def direct_set(self: Any, key: str, val: bytes) -> None:
    """``StorageInvocation.set``, its answer taken by :func:`first_answer`."""
    if not _direct(self):
        return _storage["set"](self, key, val)
    request = {"opt": "set", "key": key, "value": binascii.hexlify(val).decode()}
    return _expect_ok(first_answer(self, request), quiet_without_data=True)


def direct_delete(self: Any, key: str) -> None:
    """``StorageInvocation.delete``, its answer taken by :func:`first_answer`."""
    if not _direct(self):
        return _storage["delete"](self, key)
    return _expect_ok(first_answer(self, {"opt": "del", "key": key}), quiet_without_data=False)


def _found(data: dict | None) -> Any:
    """An answer's ``data`` field, or the SDK's error for answers that ended without data."""
    if data is None:
        raise _error("no data found")
    return data["data"]


def _expect_ok(data: dict | None, *, quiet_without_data: bool) -> None:
    """What ``set`` and ``delete`` make of their answer: ``ok``, or the SDK's errors (its
    ``set`` returns quietly when the answers end without data, its ``delete`` raises)."""
    if data is None and quiet_without_data:
        return
    if (value := _found(data)) != "ok":
        raise _error(f"unexpected data: {value}")


def direct_exist(self: Any, key: str) -> bool:
    """``StorageInvocation.exist``, its answer taken by :func:`first_answer`."""
    if not _direct(self):
        return _storage["exist"](self, key)
    return _found(first_answer(self, {"opt": "exist", "key": key}))


def _direct(invocation: Any) -> bool:
    """Whether the invocation would take the routed full-duplex path (stdio, remote debug)."""
    session = invocation.session
    return not session or session.install_method in _storage["full_duplex"]


def _install_direct_storage(version: str | None = None) -> bool:
    if _routing.get("original_invoke") is None:  # the answers must come by request id
        return False
    modules = _verified_modules(version, STORAGE_MODULE, RUNTIME_MODULE)
    if modules is None:
        return False
    storage_module, runtime = modules
    calls = storage_module.StorageInvocation
    if calls.get is direct_get:
        return True
    invocation = runtime.BackwardsInvocation
    functions = {
        "StorageInvocation.get": calls.get,
        "StorageInvocation.set": calls.set,
        "StorageInvocation.delete": calls.delete,
        "StorageInvocation.exist": calls.exist,
        "BackwardsInvocation._backwards_invoke": invocation._backwards_invoke,
        "BackwardsInvocation._line_converter_wrapper": invocation._line_converter_wrapper,
        "BackwardsInvocationResponseEvent": runtime.BackwardsInvocationResponseEvent,
    }
    if not sources_match(STORAGE_SOURCES, functions):
        return False
    _storage.update(
        get=calls.get, set=calls.set, delete=calls.delete, exist=calls.exist,
        Event=runtime.BackwardsInvocationResponseEvent,
        StorageInvocationError=storage_module.StorageInvocationError,
        full_duplex=runtime.FULL_DUPLEX_INSTALL_METHODS,
    )  # fmt: skip
    calls.get, calls.set, calls.delete, calls.exist = (
        direct_get, direct_set, direct_delete, direct_exist
    )  # fmt: skip
    return True
