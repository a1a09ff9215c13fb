"""Real HTTP clients against the in-process plugin, without sockets.

:class:`InProcessTransport` is an ``httpx2`` transport (the HTTP library the ``openai``
package uses) that hands each request to :class:`~devkit.inprocess.InProcessPlugin` as the
daemon's bytes and streams the executor's chunks back as they are produced, so the client's
own SSE parser and models see exactly what a caller over the network would.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import httpx2
from openai import OpenAI

from devkit.inprocess import InProcessPlugin

HOOK = "hookinprocess001"


class _Chunks(httpx2.SyncByteStream):
    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks


class InProcessTransport(httpx2.BaseTransport):
    def __init__(self, plugin: InProcessPlugin, settings: dict, endpoint_id: str) -> None:
        self.plugin = plugin
        self.settings = settings
        self.endpoint_id = endpoint_id

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        prefix = f"/e/{HOOK}"
        target = request.url.raw_path.decode()
        target = target[len(prefix) :] if target.startswith(prefix) else target
        headers = [
            (k, v)
            for k, v in request.headers.items()
            if k.lower() not in ("host", "content-length")
        ]
        messages = self.plugin.stream(
            request.method,
            target,
            settings=self.settings,
            headers=headers,
            body=request.read(),
            endpoint_id=self.endpoint_id,
        )
        first = next(messages)
        head = [first] if "result" in first else []
        chunks = (bytes.fromhex(m.get("result", "")) for m in itertools.chain(head, messages))
        return httpx2.Response(
            int(first["status"]), headers=dict(first["headers"]), stream=_Chunks(chunks)
        )


def openai_client(
    plugin: InProcessPlugin,
    settings: dict,
    *,
    key: str = "test-key",
    endpoint_id: str = "endpoint-inprocess",
) -> OpenAI:
    """An ``openai.OpenAI`` client whose requests run through the in-process plugin."""
    transport = InProcessTransport(plugin, settings, endpoint_id)
    return OpenAI(
        base_url=f"http://127.0.0.1/e/{HOOK}/v1",
        api_key=key,
        max_retries=0,
        timeout=20,
        http_client=httpx2.Client(transport=transport),
    )
