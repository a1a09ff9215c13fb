"""Backwards answers by request id (issue 14).

For every backwards invocation (an app run, each storage call) the SDK registers a
``FilterReader`` — a queue with its condition variables — and the stdin reader offers every line
to every registered reader's filter, under a lock, to find the one waiting for it. In 0.10.2 the
only readers are those invocations (each matching its own request id) and the listener for new
requests, so an answer can go straight to its invocation: :func:`routed_backwards_invoke` waits
on an inbox registered under its request id (before the invoke is written),
:func:`routed_process_line` puts an answer there, and any other line goes through the SDK's own
dispatch. The messages written, the waiting in one-second rounds and what the invocation raises
are the SDK's (its ``_line_converter_wrapper`` reads the inbox).
"""

from __future__ import annotations

import collections
from collections.abc import Generator, Iterator
from typing import Any

from gevent import monkey
from gevent.hub import Waiter

from bridge.transport.sdk.verify import (
    RUNTIME_MODULE,
    sources_match,
    verified_modules,
)

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


def install_routed_answers(version: str | None = None) -> bool:
    if not monkey.is_module_patched("threading"):  # the inbox waits on the hub
        return False
    modules = verified_modules(
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


def routed() -> bool:
    """Whether backwards answers come by request id (:func:`install_routed_answers` ran)."""
    return _routing.get("original_invoke") is not None
