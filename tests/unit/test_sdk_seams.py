"""bridge.transport.sdk: each seam pinned to the SDK code it was verified against.

These tests fail loudly when dify_plugin changes under the seams: re-read the SDK code
named in each test, adapt bridge/transport/sdk/ (or drop a seam the SDK no longer needs), then
update ``VERIFIED_SDK``. At run time a changed SDK only loses the seam (its own behaviour).
"""

import contextlib
import datetime
import decimal
import importlib
import inspect
import io
import json
import os
import posix
import sys
import uuid
from typing import Any

import gevent
import pytest
from dify_plugin.core import plugin_executor, runtime
from dify_plugin.core.entities.message import SessionMessage
from dify_plugin.core.plugin_executor import PluginExecutor
from dify_plugin.core.runtime import BackwardsInvocation, Session
from dify_plugin.core.server.__base.response_writer import ResponseWriter
from dify_plugin.core.server.__base.writer_entities import Event, StreamOutputMessage
from dify_plugin.core.server.stdio.request_reader import StdioRequestReader
from dify_plugin.core.server.stdio.response_writer import StdioResponseWriter
from pydantic import BaseModel, TypeAdapter, ValidationError

from bridge.transport import sdk
from bridge.transport.sdk import answers as sdk_answers
from bridge.transport.sdk import endpoint as sdk_endpoint
from bridge.transport.sdk import sessions as sdk_sessions
from bridge.transport.sdk import stdin as sdk_stdin
from bridge.transport.sdk import storage as sdk_storage
from bridge.transport.sdk import type_adapter as sdk_type_adapter
from bridge.transport.sdk import verify as sdk_verify
from bridge.transport.sdk import writer as sdk_writer
from devkit.wire import daemon_request_bytes

PER_LINE_CALL = "TypeAdapter(dict[str, Any]).validate_json(line)"


class _Nested(BaseModel):
    label: str
    at: float
    when: datetime.datetime = datetime.datetime(2026, 12, 2, 13, 0, tzinfo=datetime.UTC)
    blob: bytes = b"raw"


INVOKE = {
    "type": "storage",
    "backwards_request_id": "0123456789abcdef0123456789abcdef",
    "request": {"opt": "set", "key": "ab/e/owners/b00001", "value": "7b7d"},
}


def test_the_sdk_is_the_version_the_seams_were_verified_on():
    assert sdk_verify.sdk_version() == sdk_verify.VERIFIED_SDK, (
        "dify_plugin changed: re-verify every seam in bridge/transport/sdk/ against it"
    )


def test_install_is_idempotent_and_every_seam_is_active():
    assert sdk.install() == {
        "unparseable_requests": True,
        "plain_request_heads": True,
        "routes_by_method_and_path": True,
        "cached_type_adapter": True,
        "cooperative_stdin": True,
        "one_write_per_message": True,
        "invocations_on_first_use": True,
        "answers_by_request_id": True,
        "direct_storage_calls": True,
    }
    wrapped = PluginExecutor.invoke_endpoint
    assert sdk.install()["unparseable_requests"]
    assert PluginExecutor.invoke_endpoint is wrapped  # not wrapped twice


def test_invoke_endpoint_parses_the_raw_request_before_any_handler_runs():
    """The seam's premise (SDK ``core/plugin_executor.py``): parsing is outside the try."""
    sdk.install()
    original = PluginExecutor.invoke_endpoint.__wrapped__
    source = inspect.getsource(original)
    parse = source.index("request = deserialize_request(bytes_data)")
    assert source.index("binascii.unhexlify(data.raw_http_request)") < parse
    assert parse < source.index("try:") < source.index("dispatch_endpoint_request(request)")
    assert plugin_executor.deserialize_request.__bridge_seam__
    assert plugin_executor.deserialize_request.__wrapped__.__module__ == (
        "dify_plugin.core.utils.http_parser"
    )
    # the SDK's router reads the request model from the signature: it must survive the wrap
    parameters = inspect.signature(PluginExecutor.invoke_endpoint).parameters
    assert list(parameters) == ["self", "session", "data"]
    assert parameters["data"].annotation.__name__ == "EndpointInvokeRequest"


def test_parse_failures_stay_value_errors_for_the_sdks_other_callers():
    sdk.install()
    with pytest.raises(ValueError, match="ValueError") as raised:
        plugin_executor.deserialize_request(b"GET / HTTP/1.1\r\nHost: a:b\r\n\r\n")
    assert isinstance(raised.value, sdk_endpoint.UnparseableRequest)
    assert "Port could not be cast" in str(raised.value.__cause__)


@pytest.mark.parametrize("module_name", sdk_type_adapter.LINE_READER_MODULES)
def test_each_line_reader_builds_a_type_adapter_per_line(module_name):
    """The premise of the TypeAdapter seam: the call, as written in 0.10.2, per line."""
    module = importlib.import_module(module_name)
    assert inspect.getsource(module).count(PER_LINE_CALL) == 1
    sdk.install()
    assert module.TypeAdapter is sdk_type_adapter.cached_type_adapter


def test_the_cached_adapter_validates_exactly_like_a_fresh_one():
    build = sdk_type_adapter.cached_type_adapter
    assert build(dict[str, Any]) is build(dict[str, Any])
    other = sdk_type_adapter.cached_type_adapter(list[int])
    assert isinstance(other, TypeAdapter) and other.validate_json("[1]") == [1]
    fresh = TypeAdapter(dict[str, Any])
    cached = sdk_type_adapter.cached_type_adapter(dict[str, Any])
    line = b'{"session_id":"s","event":"request","data":{"a":[1,2.5,null,"\\u00e9"]}}'
    assert cached.validate_json(line) == fresh.validate_json(line)
    for bad in (b"[1]", b"{", b'"x"'):
        with pytest.raises(ValidationError):
            fresh.validate_json(bad)
        with pytest.raises(ValidationError):
            cached.validate_json(bad)


def test_the_stdio_reader_still_parses_lines_through_the_seam():
    sdk.install()
    reader = StdioRequestReader()
    lines = [
        b'{"session_id":"s1","event":"request","data":{"x":1}}\n',
        b'not json\n{"session_id":"s2","event":"backwards_response","data":{}}\n',
    ]
    reader._read_async = lambda: lines.pop(0) if lines else b""  # type: ignore[method-assign]
    stream = reader._read_stream()
    first, second = next(stream), next(stream)  # the bad line is reported, then skipped
    assert (first.session_id, first.data) == ("s1", {"x": 1})
    assert second.session_id == "s2"


def test_other_sdk_versions_keep_their_own_code():
    assert sdk_type_adapter.install_type_adapter("0.11.0") is False
    assert sdk_endpoint.install_request_seam("dify_plugin.core.utils.http_parser") is False
    assert sdk_stdin.install_stdin_reader("0.11.0") is False
    assert sdk_writer.install_one_write("0.11.0") is False
    assert sdk_sessions.install_lazy_invocations("0.11.0") is False


# -- stdin without the threadpool ---------------------------------------------------------


def test_the_stdio_reader_reads_stdin_through_the_threadpool():
    """The premise (SDK ``core/server/stdio/request_reader.py``): every read of stdin is a
    hand-off to gevent's threadpool, and an empty read (end of file) is simply retried."""
    original = inspect.getsource(StdioRequestReader._read_stream)
    assert "data = self._read_async()" in original
    assert "if not data:\n                continue" in original
    sdk.install()
    assert StdioRequestReader._read_async is sdk_stdin.cooperative_read
    module = importlib.import_module(sdk_stdin.STDIO_READER_MODULE)
    assert inspect.getsource(module).count(sdk_stdin.STDIO_READ_CALL) == 1


@pytest.fixture
def stdin_pipe(monkeypatch):
    read_fd, write_fd = os.pipe()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.FileIO(read_fd, "rb", closefd=False)))
    sdk_stdin._pipes.pop(read_fd, None)
    yield read_fd, write_fd
    sdk_stdin._pipes.pop(read_fd, None)
    watcher = sdk_stdin._watchers.pop(read_fd, None)
    if watcher is not None:
        watcher.close()
    for fd in (read_fd, write_fd):
        with contextlib.suppress(OSError):
            os.close(fd)


def test_a_pipe_is_read_when_ready_while_other_greenlets_run(stdin_pipe):
    read_fd, write_fd = stdin_pipe
    order = []

    def daemon() -> None:  # writes only once the reader waits: a blocking read would hang
        gevent.sleep(0.01)
        order.append("written")
        os.write(write_fd, b'{"a":1}\n')

    writer = gevent.spawn(daemon)
    with gevent.Timeout(10):
        data = sdk_stdin.cooperative_read(StdioRequestReader())
        writer.join()
    assert data == b'{"a":1}\n' and order == ["written"]
    assert os.get_blocking(read_fd) is False  # only stdin's own pipe end is made non-blocking
    assert os.get_blocking(write_fd) is True
    posix.close(write_fd)  # at once (gevent's patched ``os.close`` may defer it)
    with gevent.Timeout(10):
        assert (
            sdk_stdin.cooperative_read(StdioRequestReader()) == b""
        )  # end of file, as the SDK reads


def _written_later(write_fd: int, data: bytes) -> gevent.Greenlet:
    def daemon() -> None:  # only once the reader waits
        gevent.sleep(0.01)
        os.write(write_fd, data)

    return gevent.spawn(daemon)


def test_every_wait_for_the_pipe_uses_one_kept_watcher(stdin_pipe):
    """gevent's ``nb_read`` builds a watcher per wait and closes it after; the reader keeps
    one for its descriptor, idle between reads."""
    read_fd, write_fd = stdin_pipe
    kept = []
    for line in (b"first\n", b"second\n"):
        writer = _written_later(write_fd, line)
        with gevent.Timeout(10):
            assert sdk_stdin.cooperative_read(StdioRequestReader()) == line
            writer.join()
        kept.append(sdk_stdin._watchers[read_fd])
        assert kept[-1].callback is None  # stopped: no wait is left behind
    assert kept[0] is kept[1]


def test_a_second_reader_of_the_pipe_waits_with_a_watcher_of_its_own(stdin_pipe):
    _, write_fd = stdin_pipe
    reads = [gevent.spawn(sdk_stdin.cooperative_read, StdioRequestReader()) for _ in range(2)]
    gevent.sleep(0)  # both wait: the first on the kept watcher, the second on nb_read's
    with gevent.Timeout(10):
        os.write(write_fd, b"one\n")
        gevent.wait(reads, count=1)  # one has read it, the other waits on
        os.write(write_fd, b"two\n")
        assert sorted(read.get() for read in reads) == [b"one\n", b"two\n"]


def test_anything_but_a_pipe_of_its_own_is_read_as_the_sdk_reads(monkeypatch, tmp_path):
    path = tmp_path / "stdin"
    path.write_bytes(b"line\n")
    with path.open("rb") as handle:
        monkeypatch.setattr(sys, "stdin", handle)
        sdk_stdin._pipes.pop(handle.fileno(), None)
        try:
            assert sdk_stdin.cooperative_read(StdioRequestReader()) == b"line\n"
            assert sdk_stdin._pipes[handle.fileno()] is False
            assert os.get_blocking(handle.fileno()) is True
        finally:
            sdk_stdin._pipes.pop(handle.fileno(), None)


# -- one write per message -----------------------------------------------------------------


def test_the_writer_writes_a_message_and_its_blank_line_separately():
    """The premise (SDK ``core/server/__base/response_writer.py``): two writes, two flushes."""
    source = inspect.getsource(ResponseWriter.put)
    assert ").model_dump_json()" in source and sdk_writer.SEPARATE_WRITES in source
    sdk.install()
    assert StdioResponseWriter.put is sdk_writer.one_write_put
    assert (
        ResponseWriter.put is not sdk_writer.one_write_put
    )  # TCP and serverless writers keep theirs


class _Recording(StdioResponseWriter):
    def __init__(self) -> None:
        self.writes: list[str] = []

    def write(self, data: str) -> None:
        self.writes.append(data)


@pytest.mark.parametrize(
    "data",
    [
        {"type": "stream", "data": {"status": 200, "result": "6f6b"}},
        None,
        SessionMessage(type=SessionMessage.Type.END, data={}),
        SessionMessage(type=SessionMessage.Type.INVOKE, data=INVOKE),
        SessionMessage(type=SessionMessage.Type.STREAM, data={"m": _Nested(label="é", at=2.5)}),
        _Nested(label="model", at=-1.0),
        {"error": "x", "args": {"traceback": None}},
    ],
)
def test_one_write_sends_the_bytes_the_sdk_sends(data):
    sdk.install()
    ours, theirs = _Recording(), _Recording()
    ours.put(Event.SESSION, "session-1", data)
    ResponseWriter.put(theirs, Event.SESSION, "session-1", data)
    assert len(ours.writes) == 1 and len(theirs.writes) == 2
    assert ours.writes == ["".join(theirs.writes)]
    assert ours.writes[0].endswith("}\n\n")


# -- messages serialised without a model per message -----------------------------------------


ODD_VALUES: list[Any] = [
    {"text": 'é ✓ \u2028 \x00 "quoted" </script>', "n": [1, -2, 2**63, 1.5, 1e300, 0.1]},
    {"nan": float("nan"), "inf": float("inf"), "neg": -0.0, "big": 10**30},
    {"bytes": b"\xff\x00", "tuple": (1, "a"), "set": {3}, "none": None, "bool": [True, False]},
    {"enum": SessionMessage.Type.STREAM, "event": Event.LOG, "nested": {"d": {"e": [{}]}}},
    {"uuid": uuid.UUID(int=1), "date": datetime.date(2026, 1, 2), "dec": decimal.Decimal("1.50")},
    {"model": _Nested(label="x", at=1.0), 3: "int key", None: "none key"},
    {"unserialisable": object()},
    SessionMessage(type=SessionMessage.Type.INVOKE, data=INVOKE).model_dump(),
    {},
    None,
]


def _model_json(event: Any, session_id: Any, data: Any) -> str | type[Exception]:
    try:
        return StreamOutputMessage(event=event, session_id=session_id, data=data).model_dump_json()
    except Exception as exc:  # compared with what the seam raises
        return type(exc)


def _seam_json(event: Any, session_id: Any, data: Any) -> str | type[Exception]:
    try:
        return sdk_writer.message_json(event, session_id, data)
    except Exception as exc:  # compared with what the model raises
        return type(exc)


@pytest.mark.parametrize("data", ODD_VALUES)
@pytest.mark.parametrize("event", [Event.SESSION, Event.LOG, Event.ERROR, "session"])
@pytest.mark.parametrize("session_id", ["7f1c5a0e-session", None, "", 5])
def test_messages_are_written_exactly_as_the_model_writes_them(event, session_id, data):
    sdk.install()
    assert _seam_json(event, session_id, data) == _model_json(event, session_id, data)


def test_the_message_model_is_the_one_the_seam_was_verified_on():
    """The premise: three plain fields, no validators or serialisers of the model's own."""
    assert {name: str(f.annotation) for name, f in StreamOutputMessage.model_fields.items()} == {
        "event": str(Event),
        "session_id": "str | None",
        "data": "dict | pydantic.main.BaseModel | None",
    }
    assert StreamOutputMessage.model_config == {}
    assert not StreamOutputMessage.__pydantic_decorators__.field_serializers
    assert not StreamOutputMessage.__pydantic_decorators__.model_serializers
    assert not StreamOutputMessage.__pydantic_decorators__.field_validators
    assert not StreamOutputMessage.__pydantic_decorators__.model_validators
    assert [e.value for e in Event] == ["log", "error", "session", "heartbeat"]


# -- a session's invocation helpers built on first use -----------------------------------------


def _eager_session(**kwargs: Any) -> Session:
    """A session as the SDK builds it: every helper at once (its own _register_invocations)."""
    session = Session(session_id="s", executor=None, reader=None, writer=None)
    sdk_sessions._replaced["Session._register_invocations"](session)
    return session


def test_what_builds_a_sessions_helpers_is_what_the_seam_was_verified_on():
    """The premise (SDK ``core/runtime.py``): ``_register_invocations`` and the three groups
    build helpers that only keep the session — nothing else runs, so later is the same."""
    sdk.install()
    found = {"Session._register_invocations": sdk_verify.source_digest(
        sdk_sessions._replaced["Session._register_invocations"])}  # fmt: skip
    for name in sdk_sessions.VERIFIED_SOURCES:
        owner, _, method = name.partition(".")
        if owner != "Session":
            found[name] = sdk_verify.source_digest(getattr(getattr(runtime, owner), method))
    assert found == sdk_sessions.VERIFIED_SOURCES
    eager = _eager_session()
    helpers = [eager.tool, eager.storage, eager.file]
    for group in (eager.model, eager.app, eager.workflow_node):
        helpers += [v for v in vars(group).values() if isinstance(v, BackwardsInvocation)]
    assert len(helpers) == 17
    for helper in helpers:
        assert type(helper).__init__ is BackwardsInvocation.__init__
        assert vars(helper) == {"session": eager}


def test_helpers_are_built_on_first_use_once_per_session_as_the_sdk_builds_them():
    sdk.install()
    assert Session._register_invocations is sdk_sessions._register_invocations
    lazy = Session(session_id="s", executor=None, reader=None, writer=None)
    eager = _eager_session()
    names = ("model", "tool", "app", "workflow_node", "storage", "file")
    assert not set(names) & set(vars(lazy))
    for name in names:
        built = getattr(lazy, name)
        assert getattr(lazy, name) is built and vars(lazy)[name] is built
        assert type(built) is type(getattr(eager, name))
        assert {k: type(v) for k, v in vars(built).items() if k != "session"} == {
            k: type(v) for k, v in vars(getattr(eager, name)).items() if k != "session"
        }
        assert getattr(built, "session", lazy) is lazy
    assert lazy.app.chat.session is lazy and lazy.model.llm.session is lazy
    other = Session(session_id="t", executor=None, reader=None, writer=None)
    assert other.storage is not lazy.storage and other.storage.session is other
    other.app = "replaced"  # still a plain attribute for whoever sets it
    assert other.app == "replaced"


# -- a streamed body's headers with its first chunk ----------------------------------------


class _Endpoint:
    """What the executor builds from the registration: ``endpoint(session).invoke(...)``."""

    body: Any = b""

    def __init__(self, session: Any) -> None:
        self.session = session

    def invoke(self, request: Any, values: Any, settings: Any) -> Any:
        from werkzeug import Response

        body = type(self).body
        return Response(body() if callable(body) else body, status=201, content_type="text/x")


class _Executor:
    class registration:
        @staticmethod
        def dispatch_endpoint_request(request: Any) -> tuple[type, dict]:
            return _Endpoint, {}


def _messages(invoke: Any, body: Any) -> list[dict]:
    _Endpoint.body = body
    raw = daemon_request_bytes("GET", "/")
    data = type("Data", (), {"raw_http_request": raw.hex(), "settings": {}})
    return list(invoke(_Executor(), None, data))


def _chunks(*chunks: bytes) -> Any:
    def body() -> Any:
        yield from chunks

    return body


def _failing(*chunks: bytes) -> Any:
    def body() -> Any:
        yield from chunks
        raise RuntimeError("secret-detail")

    return body


def test_the_sdk_sends_a_streamed_bodys_headers_as_a_message_of_their_own():
    """The premise (SDK ``core/plugin_executor.py`` ``invoke_endpoint``): status and headers,
    then one ``result`` per chunk; a whole body is one message with all three."""
    sdk.install()
    original = PluginExecutor.invoke_endpoint.__wrapped__
    streamed = _messages(original, _chunks(b"a", b"bc"))
    assert [list(m) for m in streamed] == [["status", "headers"], ["result"], ["result"]]
    assert streamed[0]["status"] == 201 and streamed[0]["headers"]["Content-Type"] == "text/x"
    assert [list(m) for m in _messages(original, b"whole")] == [["status", "headers", "result"]]


def test_a_streamed_body_sends_its_headers_with_its_first_chunk():
    sdk.install()
    original = PluginExecutor.invoke_endpoint.__wrapped__
    theirs = _messages(original, _chunks(b"a", b"bc", b"d"))
    ours = _messages(PluginExecutor.invoke_endpoint, _chunks(b"a", b"bc", b"d"))
    assert ours == [{**theirs[0], **theirs[1]}, *theirs[2:]]
    assert list(ours[0]) == ["status", "headers", "result"]  # as the SDK's one-message bodies
    # the daemon's reading (InvokeEndpoint): status and headers up to the first result
    assert b"".join(bytes.fromhex(m["result"]) for m in ours) == b"abcd"
    whole = _messages(PluginExecutor.invoke_endpoint, b"whole")
    assert whole == _messages(original, b"whole")


def test_a_streamed_body_without_chunks_sends_its_headers_alone():
    sdk.install()
    ours = _messages(PluginExecutor.invoke_endpoint, _chunks())
    assert ours == _messages(PluginExecutor.invoke_endpoint.__wrapped__, _chunks())
    assert [list(m) for m in ours] == [["status", "headers"]]


def test_a_body_failing_before_its_first_chunk_is_a_clean_500(caplog):
    """Nothing has reached the daemon yet, so the failure is answered whole (no traceback)."""
    sdk.install()
    ours = _messages(PluginExecutor.invoke_endpoint, _failing())
    assert len(ours) == 1 and ours[0]["status"] == 500
    body = bytes.fromhex(ours[0]["result"])
    assert json.loads(body) == {
        "code": "internal_server_error", "message": "Internal Server Error.", "status": 500,
    }  # fmt: skip
    assert "secret-detail" not in caplog.text and "Traceback" not in caplog.text


def test_a_body_failing_after_its_first_chunk_ends_there():
    sdk.install()
    ours = _messages(PluginExecutor.invoke_endpoint, _failing(b"a", b"b"))
    assert [list(m) for m in ours] == [["status", "headers", "result"], ["result"]]
    assert ours[0]["status"] == 201


# -- backwards answers by request id ---------------------------------------------------------


def test_the_sdk_offers_every_line_to_every_reader_and_registers_after_writing():
    """The premise (SDK ``core/runtime.py``, ``core/server/__base``): an invocation writes its
    invoke, then registers a ``FilterReader``; every line is offered to every reader's filter."""
    from dify_plugin.core.server.__base.request_reader import RequestReader

    invoke = inspect.getsource(sdk_answers._routing["original_invoke"])
    assert invoke.index("session_message(") < invoke.index("self.session.reader.read(filter)")
    assert "for reader in readers_to_process:" in inspect.getsource(
        sdk_answers._routing["process_line"]
    )
    assert RequestReader._process_line is sdk_answers.routed_process_line
    assert BackwardsInvocation._full_duplex_backwards_invoke is sdk_answers.routed_backwards_invoke
    found = {
        name: sdk_verify.source_digest(function)
        for name, function in (
            (
                "BackwardsInvocation._full_duplex_backwards_invoke",
                sdk_answers._routing["original_invoke"],
            ),
            ("RequestReader._process_line", sdk_answers._routing["process_line"]),
            ("RequestReader.read", RequestReader.read),
        )
    }
    assert found == {name: sdk_answers.ROUTING_SOURCES[name] for name in found}


class _Lines(StdioRequestReader):
    """A reader fed by the test: lines go through its (seamed) ``_process_line``."""

    def answer(self, request_id: str, **fields: Any) -> None:
        self._process_line(_answer_line(self, request_id, **fields))


def _answer_line(reader: Any, request_id: str, **fields: Any) -> Any:
    from dify_plugin.core.entities.plugin.io import PluginInStream, PluginInStreamEvent

    data = {"backwards_request_id": request_id, "event": "response", "message": "", **fields}
    return PluginInStream(
        session_id="s",
        event=PluginInStreamEvent.BackwardInvocationResponse,
        data=data,
        reader=reader,
        writer=StdioResponseWriter(),
    )


class _Written(ResponseWriter):
    def __init__(self) -> None:
        self.lines: list[dict] = []

    def write(self, data: str) -> None:
        if data.strip():
            self.lines.append(json.loads(data))

    def done(self) -> None:
        pass


def _invocation(reader: Any, writer: Any) -> Any:
    from dify_plugin.config.config import InstallMethod

    session = Session(
        session_id="s", executor=None, reader=reader, writer=writer,
        install_method=InstallMethod.Local,
    )  # fmt: skip
    return BackwardsInvocation(session)


def test_an_answer_goes_to_its_invocation_without_the_readers_filters():
    reader, writer = _Lines(), _Written()
    offered = []
    reader.read(lambda line: offered.append(line.data.get("backwards_request_id")) or False)
    invocation = _invocation(reader, writer)
    answers = invocation._backwards_invoke(runtime.InvokeType.Storage, dict, {"opt": "get"})
    waiting = gevent.spawn(lambda: list(answers))
    gevent.sleep(0)  # the invoke is written and its inbox registered
    request_id = writer.lines[0]["data"]["data"]["backwards_request_id"]
    assert writer.lines[0]["data"]["data"]["request"] == {"opt": "get"}
    assert sdk_answers.waits_for_answer(reader, request_id)
    reader.answer(request_id, data={"data": "6869"})
    reader.answer(request_id, event="end", data=None)
    with gevent.Timeout(10):
        assert waiting.get() == [{"data": "6869"}]
    assert offered == []  # no reader's filter saw the answers
    assert not sdk_answers.waits_for_answer(
        reader, request_id
    )  # its route ends with the invocation
    reader.answer(request_id, event="end", data=None)  # a late line: the SDK's readers get it
    assert offered == [request_id]


def test_an_invocation_raises_what_the_sdk_raises_for_an_error_answer():
    reader, writer = _Lines(), _Written()
    answers = _invocation(reader, writer)._backwards_invoke(
        runtime.InvokeType.Storage, dict, {"opt": "get"}
    )
    waiting = gevent.spawn(lambda: list(answers))
    gevent.sleep(0)
    request_id = writer.lines[0]["data"]["data"]["backwards_request_id"]
    reader.answer(request_id, event="error", message="storage is full", data=None)
    with gevent.Timeout(10), pytest.raises(Exception, match="storage is full"):
        waiting.get()
    assert not sdk_answers.waits_for_answer(reader, request_id)


def test_an_inbox_reports_each_silent_round():
    inbox = sdk_answers.Inbox()
    rounds = inbox.read(timeout_for_round=0.001)
    assert next(rounds) is None  # nothing came within the round: the SDK's wrapper counts it
    assert next(rounds) is None
    inbox.write("answer")
    assert next(rounds) == "answer"


def test_an_answer_wakes_a_waiting_read_before_its_round_ends():
    inbox = sdk_answers.Inbox()
    rounds = inbox.read(timeout_for_round=3600)
    waiting = gevent.spawn(next, rounds)
    gevent.sleep(0)  # the read waits
    inbox.write("first")
    inbox.write("second")  # one wake-up for both
    with gevent.Timeout(10):
        assert waiting.get() == "first"
    assert next(rounds) == "second"  # already there: no wait


def test_answers_written_before_the_read_come_in_order_without_a_wait():
    inbox = sdk_answers.Inbox()
    for answer in ("a", "b", "c"):
        inbox.write(answer)
    rounds = inbox.read(timeout_for_round=3600)
    with gevent.Timeout(10):
        assert [next(rounds) for _ in range(3)] == ["a", "b", "c"]


def test_a_read_killed_while_waiting_leaves_the_inbox_usable():
    inbox = sdk_answers.Inbox()
    rounds = inbox.read(timeout_for_round=3600)  # held, as the SDK's wrapper holds it
    waiting = gevent.spawn(next, rounds)
    gevent.sleep(0)
    waiting.kill()  # as a session's end kills its request
    inbox.write("late")  # wakes nothing, fails nothing
    gevent.sleep(0)
    with gevent.Timeout(10):
        assert next(inbox.read(timeout_for_round=3600)) == "late"


def test_other_sdk_sources_keep_the_sdks_dispatch(monkeypatch):
    from dify_plugin.core.server.__base.request_reader import RequestReader

    original_line, original_invoke = (
        sdk_answers._routing["process_line"],
        sdk_answers._routing["original_invoke"],
    )
    monkeypatch.setattr(RequestReader, "_process_line", original_line)
    monkeypatch.setattr(BackwardsInvocation, "_full_duplex_backwards_invoke", original_invoke)
    monkeypatch.setitem(sdk_answers.ROUTING_SOURCES, "RequestReader.read", "another digest")
    assert sdk_answers.install_routed_answers() is False
    assert sdk_answers.install_routed_answers("0.11.0") is False
    assert RequestReader._process_line is original_line
    assert BackwardsInvocation._full_duplex_backwards_invoke is original_invoke


# -- storage calls without the generator layers -------------------------------------------------


class _Text(ResponseWriter):
    """Keeps every write as it was made."""

    def __init__(self) -> None:
        self.text = ""

    def write(self, data: str) -> None:
        self.text += data

    def done(self) -> None:
        pass


def _storage_call(call: Any, op: str, args: tuple, answers: list[dict], **session: Any) -> tuple:
    """What ``call`` (a ``StorageInvocation`` method) returns or raises once the invoke it writes
    gets ``answers``, and the text it wrote; its request id is fixed, so texts compare."""
    from dify_plugin.config.config import InstallMethod
    from dify_plugin.invocations.storage import StorageInvocation

    reader, writer = _Lines(), _Text()
    invocation = StorageInvocation(
        Session(
            session_id="s",
            executor=None,
            reader=reader,
            writer=writer,
            install_method=InstallMethod.Local,
            **session,
        )
    )
    invocation._generate_backwards_request_id = lambda: "f" * 32  # type: ignore[method-assign]
    running = gevent.spawn(call, invocation, *args)
    gevent.sleep(0)  # the invoke is written and its inbox registered
    for fields in answers:
        reader.answer("f" * 32, **fields)
    with gevent.Timeout(10):
        try:
            outcome: tuple = ("returned", running.get())
        except Exception as exc:  # compared with what the SDK raises
            outcome = ("raised", type(exc), str(exc))
    assert not sdk_answers.waits_for_answer(reader, "f" * 32)  # the route ends with the call
    return outcome, writer.text


END = {"event": "end", "data": None}
STORAGE_CASES = [
    ("get", ("k",), [{"data": {"data": "6869"}}, END]),
    ("get", ("k",), [END]),  # the daemon's answer for a missing key
    ("get", ("k",), [{"event": "error", "message": "storage is full", "data": None}]),
    ("get", ("k",), [{"data": None}]),
    ("get", ("k",), [{"data": {"data": "6869"}, "extra": 1}]),  # extra fields: as the model
    ("get", ("k",), [{"event": "bogus", "data": None}]),  # the SDK's model refuses these
    ("get", ("k",), [{"data": "not a dict"}]),
    ("get", ("k",), [{"backwards_request_id": "f" * 32, "event": "response", "data": {}}]),
    ("get", ("k",), [{"data": {"data": "zz"}}]),  # not hex: binascii's error
    ("set", ("k", b"\x00v\xff"), [{"data": {"data": "ok"}}, END]),
    ("set", ("k", b"v"), [{"data": {"data": "refused"}}]),
    ("set", ("k", b"v"), [END]),
    ("delete", ("k",), [{"data": {"data": "ok"}}]),
    ("delete", ("k",), [{"data": {"data": "gone?"}}]),
    ("exist", ("k",), [{"data": {"data": True}}]),
    ("exist", ("k",), [{"data": {"data": False}}]),
    ("exist", ("k",), [{"event": "error", "message": "no tenant", "data": None}]),
]


@pytest.mark.parametrize(("op", "args", "answers"), STORAGE_CASES)
def test_a_direct_storage_call_writes_returns_and_raises_what_the_sdk_does(op, args, answers):
    from dify_plugin.invocations.storage import StorageInvocation

    sdk.install()
    assert getattr(StorageInvocation, op) is getattr(sdk_storage, f"direct_{op}")
    ours = _storage_call(getattr(StorageInvocation, op), op, args, answers)
    theirs = _storage_call(sdk_storage._storage[op], op, args, answers)
    assert ours == theirs
    written = json.loads(ours[1])
    assert written["data"]["data"]["type"] == "storage"


def test_a_silent_daemon_times_a_direct_storage_call_out_as_the_sdk_does():
    from dify_plugin.invocations.storage import StorageInvocation

    sdk.install()
    ours = _storage_call(StorageInvocation.get, "get", ("k",), [], max_invocation_timeout=1)
    theirs = _storage_call(sdk_storage._storage["get"], "get", ("k",), [], max_invocation_timeout=1)
    assert ours == theirs
    assert ours[0] == ("raised", Exception, "invocation exited without response after 1 seconds")


def test_a_storage_call_outside_full_duplex_keeps_the_sdks_path(monkeypatch):
    from dify_plugin.config.config import InstallMethod
    from dify_plugin.invocations.storage import StorageInvocation

    sdk.install()
    calls = []
    monkeypatch.setitem(sdk_storage._storage, "get", lambda self, key: calls.append(key) or b"sdk")
    session = Session(session_id="s", executor=None, reader=_Lines(), writer=_Text(),
                      install_method=InstallMethod.Serverless)  # fmt: skip
    assert StorageInvocation(session).get("k") == b"sdk" and calls == ["k"]


def test_other_sdk_sources_keep_the_sdks_storage_calls(monkeypatch):
    from dify_plugin.invocations.storage import StorageInvocation

    sdk.install()
    originals = {op: sdk_storage._storage[op] for op in ("get", "set", "delete", "exist")}
    for op, function in originals.items():
        monkeypatch.setattr(StorageInvocation, op, function)
    monkeypatch.setitem(sdk_storage.STORAGE_SOURCES, "BackwardsInvocationResponseEvent", "another")
    assert sdk_storage.install_direct_storage() is False
    assert sdk_storage.install_direct_storage("0.11.0") is False
    routing = {k: v for k, v in sdk_answers._routing.items() if k != "original_invoke"}
    monkeypatch.setattr(sdk_answers, "_routing", routing)  # answers not routed: nothing to wait on
    monkeypatch.setitem(sdk_storage.STORAGE_SOURCES, "BackwardsInvocationResponseEvent",
                        sdk_verify.source_digest(runtime.BackwardsInvocationResponseEvent))  # fmt: skip
    assert sdk_storage.install_direct_storage() is False
    assert {op: getattr(StorageInvocation, op) for op in originals} == originals
