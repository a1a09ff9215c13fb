"""Benchmarks for the daemon-line work (issues 10 and 14); numbers, not tests.

``python -m devkit.bench_lines [split|typeadapter|memory|all]`` prints Markdown tables:

- ``split``: the cost of :func:`bridge.transport.lines.split` on a 50 MB stream — alone, and with
  the SDK's own per-chunk work (hex, the JSON session message) that every chunk then costs —
  for streams of small frames (nothing to cut), 64 KiB frames, and 3 MB frames (cut to
  256 KiB).
- ``typeadapter``: microseconds per stdin line in dify_plugin 0.10.2's reader with a fresh
  ``TypeAdapter(dict[str, Any])`` per line (the SDK) and with the cached one (bridge.transport.sdk),
  for the parse call alone and for the whole reader loop.
- ``memory``: the plugin process's peak RSS growth while one 50 MB answer goes through
  each app route (streaming and blocking), over stdio behind the daemon emulator.
"""

from __future__ import annotations

import argparse
import binascii
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dify_plugin  # noqa: F401  (gevent patching first, as in the plugin process)
from dify_plugin.core.server import stdio
from dify_plugin.core.server.__base.response_writer import ResponseWriter
from dify_plugin.core.server.stdio.request_reader import StdioRequestReader
from pydantic import TypeAdapter

from bridge.transport.lines import split
from bridge.transport.sdk import cached_type_adapter
from devkit.daemon import PluginProcess
from devkit.wire import backwards_response_message, daemon_request_bytes, encode_line
from devkit.wire import endpoint_request_message as request_message
from devkit.workspace import App, Script, Workspace

STREAM = 50_000_000


def best_of(repeat: int, call: Callable[[], object]) -> float:
    """The fastest of ``repeat`` runs, in seconds (the least disturbed by other load)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


# -- split --------------------------------------------------------------------------------


class _NullWriter(ResponseWriter):
    def write(self, data: str) -> None:
        pass

    def done(self) -> None:
        pass


def _sdk_messages(chunks: Iterator[bytes]) -> None:
    """What the SDK does with each yielded chunk: hex, one session message, one line."""
    writer = _NullWriter()
    for chunk in chunks:
        result = {"result": binascii.hexlify(chunk).decode()}
        writer.session_message(session_id="s", data=writer.stream_object(result))


def _split_row(label: str, frame: int, repeat: int) -> str:
    frames = [b"d" * frame] * (STREAM // frame)
    out = sum(1 for _ in split(frames))
    alone = best_of(repeat, lambda: sum(1 for _ in split(frames))) - best_of(
        repeat, lambda: sum(1 for _ in frames)
    )
    unsplit = best_of(repeat, lambda: _sdk_messages(iter(frames)))
    with_split = best_of(repeat, lambda: _sdk_messages(split(frames)))
    return (
        f"| {label} | {len(frames)} → {out} | {alone * 1000:.1f} ms | {unsplit * 1000:.0f} ms "
        f"| {with_split * 1000:.0f} ms | {alone / with_split:.1%} |"
    )


def bench_split(repeat: int) -> list[str]:
    return [
        "| 50 MB stream as | chunks in → out | split alone | SDK per chunk, unsplit "
        "| SDK per chunk, split | split's share |",
        "|---|---|---|---|---|---|",
        _split_row("200-byte frames", 200, repeat),
        _split_row("64 KiB frames", 64 * 1024, repeat),
        _split_row("3 MB frames", 3_000_000, repeat),
    ]


# -- TypeAdapter per line -------------------------------------------------------------------


def _sample_lines() -> dict[str, bytes]:
    raw = daemon_request_bytes(
        "POST",
        "/v1/chat-messages",
        headers={"Content-Type": "application/json", "Authorization": "Bearer k"},
        body=b'{"query": "hello", "inputs": {}, "user": "bench"}',
    )
    request = request_message(raw, {"api_key": "k", "app": {"app_id": "a"}}, endpoint_id="e")
    event = {"event": "message", "conversation_id": "c" * 36, "message_id": "m" * 36,
             "created_at": 1, "task_id": "t" * 36, "id": "m" * 36, "answer": "Hello "}  # fmt: skip
    return {
        "app stream event": encode_line(
            backwards_response_message(request, "r" * 32, "response", "stream", event)
        ),
        "storage answer": encode_line(
            backwards_response_message(request, "r" * 32, "response", "struct", {"data": "ok"})
        ),
        "endpoint request": encode_line(request),
    }


def _reader_loop(lines: bytes, count: int) -> None:
    reader = StdioRequestReader()
    chunks = [lines]
    reader._read_async = lambda: chunks.pop() if chunks else b""  # type: ignore[method-assign]
    stream = reader._read_stream()
    for _ in range(count):
        next(stream)


def bench_typeadapter(repeat: int, n: int = 2000) -> list[str]:
    module = stdio.request_reader
    rows = [
        "| line | bytes | parse: fresh adapter | parse: cached | reader loop: SDK "
        "| reader loop: seam |",
        "|---|---|---|---|---|---|",
    ]
    saved = module.TypeAdapter
    try:
        for label, line in _sample_lines().items():
            body = line.strip()

            def fresh(body: bytes = body) -> None:
                for _ in range(n):
                    TypeAdapter(dict[str, Any]).validate_json(body)

            def cached(body: bytes = body) -> None:
                for _ in range(n):
                    cached_type_adapter(dict[str, Any]).validate_json(body)

            module.TypeAdapter = TypeAdapter  # type: ignore[attr-defined]
            sdk_loop = best_of(repeat, lambda line=line: _reader_loop(line * n, n))
            module.TypeAdapter = cached_type_adapter  # type: ignore[attr-defined]
            seam_loop = best_of(repeat, lambda line=line: _reader_loop(line * n, n))
            per = 1e6 / n
            rows.append(
                f"| {label} | {len(line)} | {best_of(repeat, fresh) * per:.1f} µs "
                f"| {best_of(repeat, cached) * per:.1f} µs | {sdk_loop * per:.1f} µs "
                f"| {seam_loop * per:.1f} µs |"
            )
    finally:
        module.TypeAdapter = saved  # type: ignore[attr-defined]
    return rows


# -- memory -----------------------------------------------------------------------------


def _kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def bench_memory() -> list[str]:
    piece = "x" * 65_535 + " "
    chunks = [piece] * (STREAM // len(piece))
    apps = [
        App(mode, mode, script=Script(chunks=chunks, outputs={"text": "done"}))
        for mode in ("chat", "advanced-chat", "completion", "workflow")
    ]
    apps.append(App("agent-chat", "agent-chat", script=Script(chunks=chunks)))
    openai = {"model": "m", "messages": [{"role": "user", "content": "go"}]}
    cases = [
        ("POST /v1/chat-messages streaming", "chat", "/v1/chat-messages",
         {"query": "go", "response_mode": "streaming"}),
        ("POST /v1/chat-messages streaming (chatflow)", "advanced-chat", "/v1/chat-messages",
         {"query": "go", "response_mode": "streaming"}),
        ("POST /v1/chat-messages streaming (agent)", "agent-chat", "/v1/chat-messages",
         {"query": "go", "response_mode": "streaming"}),
        ("POST /v1/completion-messages streaming", "completion", "/v1/completion-messages",
         {"inputs": {}, "response_mode": "streaming"}),
        ("POST /v1/workflows/run streaming", "workflow", "/v1/workflows/run",
         {"inputs": {}, "response_mode": "streaming"}),
        ("POST /v1/chat/completions stream", "chat", "/v1/chat/completions",
         {**openai, "stream": True}),
        ("POST /v1/chat/completions stream (workflow)", "workflow", "/v1/chat/completions",
         {**openai, "stream": True}),
        ("POST /v1/chat-messages blocking", "chat", "/v1/chat-messages", {"query": "go"}),
        ("POST /v1/chat/completions", "chat", "/v1/chat/completions", openai),
        ("POST /extension (data tool)", "chat", "/extension",
         {"point": "app.external_data_tool.query", "params": {"query": "go"}}),
        ("POST /webhook", "chat", "/webhook", {"message": "go"}),
    ]  # fmt: skip
    rows = [
        "| route (50 MB answer) | streamed | wall | peak RSS growth |",
        "|---|---|---|---|",
    ]
    workspace = Workspace(apps)
    with PluginProcess(workspace) as process:
        assert process._proc is not None
        pid = process._proc.pid
        clear_refs = Path(f"/proc/{pid}/clear_refs")
        for label, app_id, path, body in cases:
            settings = {"api_key": "k", "app": {"app_id": app_id}}
            raw = daemon_request_bytes(
                "POST", path, headers={"Content-Type": "application/json",
                                       "Authorization": "Bearer k"},
                body=json.dumps(body).encode(),
            )  # fmt: skip
            process.request(daemon_request_bytes("GET", "/"), settings)
            clear_refs.write_text("5")
            before = _kib(pid, "VmRSS")
            start = time.perf_counter()
            reply = process.send(raw, settings)
            streamed = sum(len(chunk) for chunk in reply.chunks)
            wall = time.perf_counter() - start
            grown = (_kib(pid, "VmHWM") - before) / 1024
            workspace.emitted.clear()
            rows.append(
                f"| {label} | {streamed / 1e6:.1f} MB ({reply.status}) | {wall:.2f} s "
                f"| {grown:+.0f} MB |"
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="?", default="all",
                        choices=["split", "typeadapter", "memory", "all"])  # fmt: skip
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    sections: dict[str, tuple[str, Callable[[], list[str]]]] = {
        "split": ("Chunk splitting on a 50 MB stream", lambda: bench_split(args.repeat)),
        "typeadapter": ("TypeAdapter per stdin line", lambda: bench_typeadapter(args.repeat)),
        "memory": ("Peak RSS on a 50 MB answer", bench_memory),
    }
    for name, (title, bench) in sections.items():
        if args.what in ("all", name):
            print(f"\n### {title}\n")
            print("\n".join(bench()))


if __name__ == "__main__":
    main()
