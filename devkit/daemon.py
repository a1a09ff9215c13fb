"""Process level: the real plugin (``python -m main``) behind an emulated daemon.

:class:`PluginProcess` speaks the SDK's stdio protocol exactly as the daemon's local
runtime does (protocol.md §5.1–5.2): it starts the plugin with ``INSTALL_METHOD=local``
in the plugin directory, waits for the first heartbeat, writes one JSON request line per
endpoint call, demultiplexes the plugin's ``session`` messages by ``session_id`` (many
calls in flight at once), answers ``invoke`` messages from an emulated
:class:`~devkit.workspace.Workspace` on reused worker threads as soon as they are read
(whether or not the HTTP caller is reading the body yet, as the daemon does), and relays ``stream``
messages as the daemon relays them to the HTTP caller (§4.5): status and headers from the
first message, one body chunk per ``result``, an ``error`` message's JSON text written
into the body. Like the daemon's ``bufio.Scanner``, it kills the plugin when a stdout line
and its newline do not fit in 5 MiB (``PLUGIN_RUNTIME_MAX_BUFFER_SIZE``), and like the real
daemon (``InvokeEndpoint`` at bdb5642, docs/real-daemon.md) it drops every chunk after the
first when the plugin's ``end`` had already arrived by the time the first chunk was handed on.

Sessions live as the daemon's do (daemon-notes §A(1)): each request is a new
:class:`Session`; it ends when the plugin sends ``end`` or ``error``, when the execution
timeout passes — counted, as the real daemon counts it, from the first body chunk, with no
limit before that but the emulator's own :data:`FIRST_CHUNK_TIMEOUT` — or when the HTTP
client disconnects (:meth:`Session.close`). After that the
session's backwards invocations get no answer: new ones are recorded in
:attr:`PluginProcess.dropped` and never answered, answers still in flight are not written.

The emulator also serves the daemon's HTTP listener on loopback (:mod:`devkit.listener`)
and passes its port to the plugin as ``SERVER_PORT``, as Dify's local runtime does, so the
plugin can call its own endpoints (``http://127.0.0.1:$SERVER_PORT/e/<hook_id>/…``). It
knows each hook's endpoint id and settings from :meth:`PluginProcess.register` or from the
last request sent for that hook.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator, Mapping
from pathlib import Path
from typing import Any

from devkit.listener import PluginCrashed, listen
from devkit.responses import EndpointResponse, collect
from devkit.wire import (
    backwards_response_message,
    daemon_error_body,
    encode_line,
    endpoint_request_message,
)
from devkit.workspace import Workspace

REPO_ROOT = Path(__file__).resolve().parent.parent
MAX_LINE = 5 * 1024 * 1024  # PLUGIN_RUNTIME_MAX_BUFFER_SIZE
EXECUTION_TIMEOUT = 600.0  # PLUGIN_MAX_EXECUTION_TIMEOUT, from the first body chunk on
# The real daemon waits for the first body chunk without a limit (only the client or nginx,
# proxy_read_timeout 3600 s in Dify's compose, ends that wait); the emulator bounds it there.
FIRST_CHUNK_TIMEOUT = 3600.0


class FifoLock:
    """A lock granted in arrival order, as Go's fd write lock serialises the daemon's writers.

    ``threading.Lock`` lets a busy writer re-acquire at once and starve the others: a
    storage answer would then wait behind a whole fast app stream, which the daemon's
    concurrent ``Write`` calls on the plugin's stdin never do.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._next_ticket = 0
        self._serving = 0

    def __enter__(self) -> None:
        with self._cond:
            ticket = self._next_ticket
            self._next_ticket += 1
            while ticket != self._serving:
                self._cond.wait()

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self._serving += 1
            self._cond.notify_all()


class Workers:
    """Reused threads for answering backwards invocations, each on its own, at once.

    The daemon answers every invocation in a goroutine of its own (cheap); starting an OS
    thread per invocation instead costs the emulator more than a storage answer itself, in
    every process-level measurement. A task goes to an idle worker, or to a new one when all
    are busy, so answers stay as concurrent as the daemon's; idle workers end after a while.
    """

    IDLE_SECONDS = 30.0

    def __init__(self) -> None:
        self._idle: list[queue.SimpleQueue] = []
        self._lock = threading.Lock()

    def submit(self, task: Callable[..., None], *args: object) -> None:
        with self._lock:
            inbox = self._idle.pop() if self._idle else None
        if inbox is None:
            inbox = queue.SimpleQueue()
            threading.Thread(target=self._work, args=(inbox,), daemon=True).start()
        inbox.put((task, args))

    def _work(self, inbox: queue.SimpleQueue) -> None:
        while True:
            try:
                item = inbox.get(timeout=self.IDLE_SECONDS)
            except queue.Empty:
                with self._lock:
                    if inbox in self._idle:  # else a task was handed over just now
                        self._idle.remove(inbox)
                        return
                continue
            if item is None:
                return
            task, args = item
            try:
                task(*args)
            finally:
                with self._lock:
                    self._idle.append(inbox)

    def close(self) -> None:
        """End the idle workers (busy ones end when their task does and they find no more)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for inbox in idle:
            inbox.put(None)


class _Closed:
    """Sentinel put on every session queue when the process is gone."""


class _Ended:
    """Sentinel put on a session's queue when the session ends from the daemon's side."""


class StreamedReply:
    """An endpoint response as the daemon relays it: status, headers, then chunks."""

    def __init__(
        self,
        status: int,
        headers: dict[str, str],
        chunks: Iterator[bytes],
        session: Session | None = None,
    ) -> None:
        self.status = status
        self.headers = headers
        self.chunks = chunks
        self.session = session

    @property
    def cut(self) -> bool:
        """The session ended before the plugin finished the body (client gone, timeout)."""
        return self.session is not None and self.session.end_reason not in ("", "end", "error")

    def close(self, reason: str = "client disconnected") -> None:
        """The HTTP client went away: end the session as the daemon does."""
        if self.session is not None:
            self.session.close(reason)

    def collect(self) -> EndpointResponse:
        return collect(self.status, self.headers, self.chunks)


class Session:
    """One endpoint request's session, from the request line to its end."""

    def __init__(self, process: PluginProcess, request: dict) -> None:
        self.process = process
        self.request = request
        self.id: str = request["session_id"]
        self.inbox: queue.Queue = queue.Queue()
        self.ended = threading.Event()
        self.end_reason = ""
        self.lock = threading.Lock()  # orders "ended?" checks against answers being written

    def put(self, message: object) -> None:
        """Deliver a plugin message (or a sentinel) to this session's reader."""
        self.inbox.put(message)

    @property
    def ended_by_client(self) -> bool:
        return self.end_reason == "client disconnected"

    def close(self, reason: str = "client disconnected") -> None:
        """End the session from the daemon's side (client disconnect, timeout)."""
        self.process._end(self, reason)

    def reply(self) -> StreamedReply:
        """Block until status and headers are known (the first body chunk), like the daemon."""
        ended = (lambda: _end_queued(self.inbox)) if self.process.daemon_cut else (lambda: False)
        reply = self.process._relay(self.process._session_messages(self), ended=ended)
        reply.session = self
        return reply


class PluginProcess:
    """A running plugin process and the daemon side of its stdio protocol."""

    def __init__(
        self,
        workspace: Workspace,
        root: Path = REPO_ROOT,
        *,
        python: str | None = None,
        env: Mapping[str, str] | None = None,
        execution_timeout: float = EXECUTION_TIMEOUT,
        first_chunk_timeout: float = FIRST_CHUNK_TIMEOUT,
        entrypoint: str = "main",
        daemon_cut: bool = True,
        listen_http: bool = True,
    ) -> None:
        self.workspace = workspace
        self.root = root
        self.python = python or sys.executable
        self.extra_env = dict(env or {})
        self.execution_timeout = execution_timeout
        self.first_chunk_timeout = first_chunk_timeout
        self.entrypoint = entrypoint
        # the real daemon's cut of bodies whose end arrived with their first chunk; only
        # ./dev bench turns it off (with the plugin's END_GRACE at 0) to time the plugin alone
        self.daemon_cut = daemon_cut
        self.logs: list[dict] = []
        self.stray_errors: list[dict] = []
        self.stderr_tail: deque[str] = deque(maxlen=200)
        self.longest_line = 0  # bytes, newline included, of the longest stdout line read
        self._proc: subprocess.Popen[bytes] | None = None
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()
        self._stdin_lock = FifoLock()
        self._ready = threading.Event()
        self._readers: list[threading.Thread] = []
        self._workers = Workers()
        self.listen = listen_http
        self.endpoints: dict[str, tuple[str, dict]] = {}  # hook id -> (endpoint id, settings)
        self.opened: list[str] = []  # session ids, in the order requests arrived
        self.ended_sessions: dict[str, str] = {}  # session id -> why it ended
        self.dropped: list[dict] = []  # backwards invocations no one answered
        self._http: Any = None
        self.server_port: int | None = None

    # -- lifecycle -------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> PluginProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DIFY_")}
        env.update({"INSTALL_METHOD": "local", "PYTHONUNBUFFERED": "1", **self._listen()})
        env.update(self.extra_env)
        self._proc = subprocess.Popen(
            [self.python, "-m", self.entrypoint],
            cwd=self.root,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._readers = [
            threading.Thread(target=self._read_stdout, name="plugin-stdout", daemon=True),
            threading.Thread(target=self._read_stderr, name="plugin-stderr", daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            code = self._proc.poll()
            if code is not None or time.monotonic() > deadline:
                self.stop()
                time.sleep(0.1)  # let the stderr reader drain
                reason = (
                    f"plugin stopped (exit code {code}) before its first heartbeat"
                    if code is not None
                    else f"no heartbeat within {timeout:g} s"
                )
                tail = "".join(f"\n    {line}" for line in list(self.stderr_tail)[-20:] if line)
                raise PluginCrashed(reason + (f"; last stderr lines:{tail}" if tail else ""))
        return self

    def stop(self) -> None:
        self._stop_listening()
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        for reader in self._readers:  # at EOF now; closing a stream mid-read would raise
            reader.join(timeout=5)
        self._workers.close()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> PluginProcess:
        return self.start() if self._proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- the daemon's HTTP listener (SERVER_PORT) ----------------------------------
    def _listen(self) -> dict[str, str]:
        """Bind the loopback listener before the plugin starts; its port is SERVER_PORT."""
        if not self.listen or self._http is not None:
            return {"SERVER_PORT": str(self.server_port)} if self.server_port else {}
        self._http = listen(self)
        self.server_port = int(self._http.server_address[1])
        threading.Thread(
            target=self._http.serve_forever, name="daemon-listener", daemon=True
        ).start()
        return {"SERVER_PORT": str(self.server_port)}

    def _stop_listening(self) -> None:
        server, self._http = self._http, None
        if server is not None:
            server.shutdown()
            server.server_close()
        self.server_port = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<SERVER_PORT>``: the daemon listener the plugin can call."""
        if not self.server_port:
            raise RuntimeError("the emulator is not listening (listen_http=False or stopped)")
        return f"http://127.0.0.1:{self.server_port}"

    def register(self, hook_id: str, endpoint_id: str, settings: Mapping[str, object]) -> None:
        """Make ``/e/<hook_id>/…`` on the listener reach this endpoint with these settings."""
        self.endpoints[hook_id] = (endpoint_id, dict(settings))

    # -- stdio -----------------------------------------------------------------------
    def _write(self, message: Mapping) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None:
            raise PluginCrashed("plugin process is not running")
        with self._stdin_lock:
            proc.stdin.write(encode_line(message))
            proc.stdin.flush()

    def _read_stderr(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stderr is not None
        for line in proc.stderr:
            self.stderr_tail.append(line.decode(errors="replace").rstrip())

    def _read_stdout(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        try:
            while True:
                line = proc.stdout.readline(MAX_LINE)
                if not line:
                    break
                if len(line) == MAX_LINE and not line.endswith(b"\n"):
                    # bufio.Scanner: a line and its newline must fit in MAX_LINE bytes
                    self.stray_errors.append({"error": "stdout line over 5 MiB: plugin killed"})
                    proc.kill()
                    proc.wait(timeout=10)
                    break
                self.longest_line = max(self.longest_line, len(line))
                self._dispatch(line)
        finally:
            with self._lock:
                sessions = list(self._sessions.values())
            for q in sessions:
                q.put(_Closed())

    def _dispatch(self, line: bytes) -> None:
        text = line.strip()
        if not text:
            return
        try:
            message = json.loads(text)
        except ValueError:
            return
        event = message.get("event") if isinstance(message, dict) else None
        if event == "heartbeat":
            self._ready.set()
        elif event == "log":
            self.logs.append(message.get("data") or {})
        elif event in ("session", "error"):
            session_id = message.get("session_id") or ""
            with self._lock:
                target = self._sessions.get(session_id)
                ended = self.ended_sessions.get(session_id)
            if target is not None:
                invoke = _invocation(message)
                if invoke is None:
                    target.inbox.put(message)
                else:  # answered at once, as the daemon answers each in a goroutine
                    self._workers.submit(self._answer, target, invoke)
            elif ended is not None and _invoke_type(message):
                self.dropped.append(
                    {"session_id": session_id, "type": _invoke_type(message), "why": ended}
                )
            else:
                self.stray_errors.append(message)

    # -- endpoint requests -------------------------------------------------------------
    def open_session(
        self,
        raw_request: bytes,
        settings: Mapping[str, object],
        *,
        endpoint_id: str = "endpoint-process",
    ) -> Session:
        """Write one endpoint request as a new session; read its reply with ``reply()``."""
        hook_id = _hook_id(raw_request)
        if hook_id:
            self.register(hook_id, endpoint_id, settings)
        request = endpoint_request_message(raw_request, settings, endpoint_id=endpoint_id)
        session = Session(self, request)
        with self._lock:
            self._sessions[session.id] = session
            self.opened.append(session.id)
        try:
            self._write(request)
        except PluginCrashed:
            self._end(session, "plugin not running")
            raise
        return session

    def send(
        self,
        raw_request: bytes,
        settings: Mapping[str, object],
        *,
        endpoint_id: str = "endpoint-process",
    ) -> StreamedReply:
        """Send one endpoint request; return once status and headers are known."""
        return self.open_session(raw_request, settings, endpoint_id=endpoint_id).reply()

    def request(
        self, raw_request: bytes, settings: Mapping[str, object], **kwargs: str
    ) -> EndpointResponse:
        return self.send(raw_request, settings, **kwargs).collect()

    def _end(self, session: Session, reason: str) -> None:
        """End ``session``: later backwards invocations are dropped, answers not written."""
        with session.lock:
            if session.ended.is_set():
                return
            session.end_reason = reason
            session.ended.set()
        with self._lock:
            self._sessions.pop(session.id, None)
            self.ended_sessions[session.id] = reason
            while len(self.ended_sessions) > 10_000:
                self.ended_sessions.pop(next(iter(self.ended_sessions)))
        session.inbox.put(_Ended())

    def _session_messages(self, session: Session) -> Iterator[dict]:
        """The session's ``stream``/``error`` payloads (``invoke`` messages never come here:
        :meth:`_dispatch` hands them to the workers as it reads them).

        The execution timer starts once the first body chunk is in (``service.Endpoint``
        starts ``time.After(maxExecutionTime)`` only after ``InvokeEndpoint`` returned with it).
        """
        deadline = time.monotonic() + self.first_chunk_timeout
        timing = False
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._end(session, "timeout")
                    yield {"type": "timeout"}
                    return
                try:
                    message = session.inbox.get(timeout=remaining)
                except queue.Empty:
                    continue
                if isinstance(message, _Closed):
                    raise PluginCrashed("plugin process exited during the request")
                if isinstance(message, _Ended):
                    return
                if message.get("event") == "error":
                    self._end(session, "error")
                    yield {"type": "error", "data": message.get("data") or {}}
                    return
                data = message.get("data") or {}
                kind = data.get("type")
                if kind == "stream":
                    chunk = data.get("data") or {}
                    if not timing and "result" in chunk:
                        timing = True
                        deadline = time.monotonic() + self.execution_timeout
                    yield {"type": kind, "data": chunk}
                elif kind == "error":
                    self._end(session, "error")
                    yield {"type": kind, "data": data.get("data") or {}}
                    return
                elif kind == "end":
                    self._end(session, "end")
                    return
        finally:
            if not session.ended.is_set():  # the plugin's end may wait unread (a cut body)
                self._end(session, "end" if _end_queued(session.inbox) else "reader stopped")

    def _answer(self, session: Session, invoke: dict) -> None:
        request_id = invoke.get("backwards_request_id", "")
        kind = invoke.get("type", "")
        for payload in self.workspace.answer(kind, invoke.get("request") or {}):
            reply = backwards_response_message(session.request, request_id, **payload)
            with session.lock:  # the daemon cancels in-flight calls of an ended session
                if session.ended.is_set():
                    self.dropped.append(
                        {"session_id": session.id, "type": kind, "why": session.end_reason}
                    )
                    return
                try:
                    self._write(reply)
                except (PluginCrashed, OSError, ValueError):
                    return

    @staticmethod
    def _relay(
        messages: Generator[dict, None, None], ended: Callable[[], bool] = lambda: False
    ) -> StreamedReply:
        """Status/headers from the messages before the first ``result`` (daemon rules).

        ``ended`` tells whether the plugin's ``end`` is already queued once the first chunk
        is taken: the real daemon then closes the body after that chunk.
        """
        status, headers = 200, {}
        first_chunk: bytes | None = None
        for message in messages:
            if message["type"] != "stream":
                body = _daemon_error_body(message)
                return StreamedReply(500, {"Content-Type": "application/json"}, iter([body]))
            data = message["data"]
            status = int(data.get("status", status))
            headers.update({k: str(v) for k, v in (data.get("headers") or {}).items()})
            if "result" in data:
                first_chunk = bytes.fromhex(data["result"])
                break
        else:
            return StreamedReply(status, headers, iter(()))
        if ended():  # endpoint_service.go: `if resp.IsClosed() { response.Close() }`
            messages.close()
            return StreamedReply(status, headers, iter([first_chunk] if first_chunk else []))

        def chunks() -> Iterator[bytes]:
            if first_chunk:
                yield first_chunk
            for message in messages:
                if message["type"] == "stream":
                    piece = bytes.fromhex((message["data"] or {}).get("result", ""))
                    if piece:
                        yield piece
                else:
                    yield _daemon_error_body(message)
                    return

        return StreamedReply(status, headers, chunks())


def _end_queued(inbox: queue.Queue) -> bool:
    """Whether the session's ``end`` (or ``error``) already waits in ``inbox``."""
    pending = list(inbox.queue)  # a snapshot; the reader thread only appends
    return any(
        isinstance(m, dict) and (m.get("data") or {}).get("type") in ("end", "error")
        for m in pending
    )


def _daemon_error_body(message: dict) -> bytes:
    """What the daemon writes into the HTTP body for a session error or a timeout."""
    if message["type"] == "timeout":
        return daemon_error_body(-500, "killed by timeout")
    return json.dumps(message.get("data") or {}).encode()


def _invocation(message: dict) -> dict | None:
    """The backwards invocation a plugin ``session`` message carries, or None."""
    data = message.get("data")
    if message.get("event") != "session" or not isinstance(data, dict):
        return None
    if data.get("type") != "invoke":
        return None
    invoke = data.get("data")
    return invoke if isinstance(invoke, dict) else {}


def _invoke_type(message: dict) -> str:
    """The backwards invocation type of a plugin ``session`` message, or ""."""
    data = message.get("data") if isinstance(message.get("data"), dict) else {}
    if data.get("type") != "invoke":
        return ""
    return str((data.get("data") or {}).get("type") or "invoke")


def _hook_id(raw_request: bytes) -> str:
    """The ``Dify-Hook-Id`` header of a raw request (the daemon always adds one)."""
    head = raw_request.split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"dify-hook-id":
            return value.strip().decode("latin-1")
    return ""
