"""Process level: the real plugin (``python -m main``) behind an emulated daemon.

:class:`PluginProcess` speaks the SDK's stdio protocol exactly as the daemon's local
runtime does (protocol.md §5.1–5.2): it starts the plugin with ``INSTALL_METHOD=local``
in the plugin directory, waits for the first heartbeat, writes one JSON request line per
endpoint call, demultiplexes the plugin's ``session`` messages by ``session_id`` (many
calls in flight at once), answers ``invoke`` messages from an emulated
:class:`~devkit.workspace.Workspace` on their own threads, and relays ``stream``
messages as the daemon relays them to the HTTP caller (§4.5): status and headers from the
first message, one body chunk per ``result``, an ``error`` message's JSON text written
into the body. Like the daemon's ``bufio.Scanner``, it kills the plugin when a stdout line
and its newline do not fit in 5 MiB (``PLUGIN_RUNTIME_MAX_BUFFER_SIZE``), and like the real
daemon (``InvokeEndpoint`` at bdb5642, docs/real-daemon.md) it drops every chunk after the
first when the plugin's ``end`` had already arrived by the time the first chunk was handed on.
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
EXECUTION_TIMEOUT = 600.0  # PLUGIN_MAX_EXECUTION_TIMEOUT


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


class PluginCrashed(RuntimeError):
    """The plugin process exited or was killed while a request was in flight."""


class _Closed:
    """Sentinel put on every session queue when the process is gone."""


class StreamedReply:
    """An endpoint response as the daemon relays it: status, headers, then chunks."""

    def __init__(self, status: int, headers: dict[str, str], chunks: Iterator[bytes]) -> None:
        self.status = status
        self.headers = headers
        self.chunks = chunks

    def collect(self) -> EndpointResponse:
        return collect(self.status, self.headers, self.chunks)


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
        entrypoint: str = "main",
        daemon_cut: bool = True,
    ) -> None:
        self.workspace = workspace
        self.root = root
        self.python = python or sys.executable
        self.extra_env = dict(env or {})
        self.execution_timeout = execution_timeout
        self.entrypoint = entrypoint
        # the real daemon's cut of bodies whose end arrived with their first chunk; only
        # ./dev bench turns it off (with the plugin's END_GRACE at 0) to time the plugin alone
        self.daemon_cut = daemon_cut
        self.logs: list[dict] = []
        self.stray_errors: list[dict] = []
        self.stderr_tail: deque[str] = deque(maxlen=200)
        self.longest_line = 0  # bytes, newline included, of the longest stdout line read
        self._proc: subprocess.Popen[bytes] | None = None
        self._sessions: dict[str, queue.Queue] = {}
        self._lock = threading.Lock()
        self._stdin_lock = FifoLock()
        self._ready = threading.Event()
        self._readers: list[threading.Thread] = []
        self._workers = Workers()

    # -- lifecycle -------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> PluginProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DIFY_")}
        env.update({"INSTALL_METHOD": "local", "PYTHONUNBUFFERED": "1", **self.extra_env})
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
            with self._lock:
                target = self._sessions.get(message.get("session_id") or "")
            if target is not None:
                target.put(message)
            else:
                self.stray_errors.append(message)

    # -- endpoint requests -------------------------------------------------------------
    def send(
        self,
        raw_request: bytes,
        settings: Mapping[str, object],
        *,
        endpoint_id: str = "endpoint-process",
    ) -> StreamedReply:
        """Send one endpoint request; return once status and headers are known."""
        request = endpoint_request_message(raw_request, settings, endpoint_id=endpoint_id)
        session_id = request["session_id"]
        inbox: queue.Queue = queue.Queue()
        with self._lock:
            self._sessions[session_id] = inbox
        self._write(request)
        deadline = time.monotonic() + self.execution_timeout
        messages = self._session_messages(request, inbox, deadline)
        ended = (lambda: _end_queued(inbox)) if self.daemon_cut else (lambda: False)
        return self._relay(messages, ended=ended)

    def request(
        self, raw_request: bytes, settings: Mapping[str, object], **kwargs: str
    ) -> EndpointResponse:
        return self.send(raw_request, settings, **kwargs).collect()

    def _session_messages(
        self, request: dict, inbox: queue.Queue, deadline: float
    ) -> Generator[dict, None, None]:
        """The session's ``stream``/``error`` payloads; answers ``invoke`` on the side."""
        session_id = request["session_id"]
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    yield {"type": "timeout"}
                    return
                try:
                    message = inbox.get(timeout=remaining)
                except queue.Empty:
                    continue
                if isinstance(message, _Closed):
                    raise PluginCrashed("plugin process exited during the request")
                if message.get("event") == "error":
                    yield {"type": "error", "data": message.get("data") or {}}
                    continue
                data = message.get("data") or {}
                kind = data.get("type")
                if kind == "invoke":
                    self._workers.submit(self._answer, request, data.get("data") or {})
                elif kind in ("stream", "error"):
                    yield {"type": kind, "data": data.get("data") or {}}
                elif kind == "end":
                    return
        finally:
            with self._lock:
                self._sessions.pop(session_id, None)

    def _answer(self, request: dict, invoke: dict) -> None:
        request_id = invoke.get("backwards_request_id", "")
        for payload in self.workspace.answer(invoke.get("type", ""), invoke.get("request") or {}):
            reply = backwards_response_message(request, request_id, **payload)
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
