"""Storage calls without the generator layers (issue 14).

Each ``session.storage`` call reaches its one answer through three generators
(``_backwards_invoke``, the routed invoke, ``_line_converter_wrapper``), a ``SessionMessage``
model for the invoke and a ``BackwardsInvocationResponseEvent`` model for the answer. Where
answers are routed by request id, :func:`first_answer` writes the same invoke and takes the
first answer from the same inbox, reading an answer of the daemon's plain shape as it is (any
other through the SDK's model); the four calls then return and raise as the SDK's
(``tests/unit`` runs both on the same answers). Outside stdio and remote debugging the SDK's
calls run as they are.
"""

from __future__ import annotations

import binascii
from typing import Any

from bridge.transport.sdk.answers import _Route, _session_of, routed
from bridge.transport.sdk.verify import (
    RUNTIME_MODULE,
    sources_match,
    verified_modules,
)

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


def install_direct_storage(version: str | None = None) -> bool:
    if not routed():  # the answers must come by request id
        return False
    modules = verified_modules(version, STORAGE_MODULE, RUNTIME_MODULE)
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
