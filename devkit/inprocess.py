"""In-process level: the SDK's own request parser, router, executor and ``Session``.

Requests are the daemon's exact bytes (:mod:`devkit.wire`), handed to the SDK's
``PluginExecutor.invoke_endpoint`` — the same call the plugin process makes — with a real
``Session`` whose full-duplex backwards invocations are answered by an emulated
:class:`~devkit.workspace.Workspace`. Only the stdio transport is missing; the process
level (:mod:`devkit.daemon`) adds it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from dify_plugin.config.config import DifyPluginEnv, InstallMethod
from dify_plugin.core.entities.plugin.io import PluginInStream, PluginInStreamEvent
from dify_plugin.core.entities.plugin.request import EndpointInvokeRequest
from dify_plugin.core.plugin_executor import PluginExecutor
from dify_plugin.core.plugin_registration import PluginRegistration
from dify_plugin.core.runtime import Session
from dify_plugin.core.server.__base.request_reader import RequestReader
from dify_plugin.core.server.__base.response_writer import ResponseWriter

from bridge.transport.sdk import install as install_sdk_seams
from bridge.transport.sdk import waits_for_answer
from devkit.responses import EndpointResponse, collect
from devkit.wire import HeaderItems, daemon_request_bytes
from devkit.workspace import Workspace

REPO_ROOT = Path(__file__).resolve().parent.parent
_FILTER_WAIT = 10.0


class _Reader(RequestReader):
    """Receives backwards responses pushed by :class:`_Writer`; never reads a stream."""

    def _read_stream(self) -> Iterator[PluginInStream]:
        return iter(())


class _Writer(ResponseWriter):
    """Turns the plugin's ``invoke`` session messages into workspace answers."""

    def __init__(self, reader: _Reader, workspace: Workspace, endpoint_id: str) -> None:
        self.reader = reader
        self.workspace = workspace
        self.endpoint_id = endpoint_id

    def write(self, data: str) -> None:
        if not data.strip():
            return
        message = json.loads(data)
        payload = message.get("data") or {}
        if message.get("event") == "session" and payload.get("type") == "invoke":
            threading.Thread(target=self._answer, args=(message,), daemon=True).start()

    def done(self) -> None:
        return None

    def _stream(self, session_id: str, data: dict) -> PluginInStream:
        return PluginInStream(
            session_id=session_id,
            event=PluginInStreamEvent.BackwardInvocationResponse,
            data=data,
            reader=self.reader,
            writer=self,
            endpoint_id=self.endpoint_id,
        )

    def _answer(self, message: dict) -> None:
        invoke = message["data"]["data"]
        request_id = invoke["backwards_request_id"]
        session_id = message["session_id"]
        # The SDK registers its reader right *after* writing the invoke: wait for it (App
        # Bridge's routed invocations register before they write).
        probe = self._stream(session_id, {"backwards_request_id": request_id})
        deadline = time.monotonic() + _FILTER_WAIT
        while not waits_for_answer(self.reader, request_id) and not any(
            r.filter(probe) for r in list(self.reader.readers)
        ):
            if time.monotonic() > deadline:
                return
            time.sleep(0.0005)
        for payload in self.workspace.answer(invoke["type"], invoke["request"], user_id=""):
            self.reader._process_line(
                self._stream(session_id, {"backwards_request_id": request_id, **payload})
            )


class InProcessPlugin:
    """The plugin loaded in this process through the SDK's own registration."""

    def __init__(
        self, workspace: Workspace, root: Path = REPO_ROOT, *, max_invocation_timeout: int = 250
    ) -> None:
        self.workspace = workspace
        self.root = root
        self.max_invocation_timeout = max_invocation_timeout
        install_sdk_seams()  # as main.py does, before the executor is built
        config = DifyPluginEnv(INSTALL_METHOD=InstallMethod.Local)
        with contextlib.chdir(root):
            self.registration = PluginRegistration(config)
        self.executor = PluginExecutor(config, self.registration)
        self._pool = ThreadPoolExecutor(max_workers=4)

    def stream(
        self,
        method: str,
        target: str,
        *,
        settings: Mapping[str, object],
        headers: HeaderItems | None = None,
        body: bytes = b"",
        endpoint_id: str = "endpoint-inprocess",
        raw: bytes | None = None,
    ) -> Iterator[dict]:
        """Yield the executor's messages (``{"status","headers"[,"result"]}``, ``{"result"}``)."""
        raw = (
            raw
            if raw is not None
            else daemon_request_bytes(method, target, headers=headers, body=body)
        )
        request = EndpointInvokeRequest(settings=dict(settings), raw_http_request=raw.hex())
        yield from self.executor.invoke_endpoint(self.session(endpoint_id), request)

    def session(self, endpoint_id: str = "endpoint-inprocess") -> Session:
        """A real SDK ``Session`` whose backwards calls the workspace answers."""
        reader = _Reader()
        return Session(
            session_id=str(uuid.uuid4()),
            executor=self._pool,
            reader=reader,
            writer=_Writer(reader, self.workspace, endpoint_id),
            install_method=InstallMethod.Local,
            endpoint_id=endpoint_id,
            max_invocation_timeout=self.max_invocation_timeout,
        )

    def request(self, method: str, target: str, **kwargs: object) -> EndpointResponse:
        """Run one request to completion and record chunks with their arrival times."""
        messages = self.stream(method, target, **kwargs)  # type: ignore[arg-type]
        first = next(messages)
        head = [first] if "result" in first else []
        chunks = (bytes.fromhex(m.get("result", "")) for m in itertools.chain(head, messages))
        return collect(int(first["status"]), dict(first["headers"]), chunks)
