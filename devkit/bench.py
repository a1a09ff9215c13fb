"""Benchmarks: the bridge's per-request cost against a null endpoint on the same SDK.

``python -m devkit.bench [--n 300]`` prints a Markdown table. Each case runs the same request
many times after a warm-up and reports the median and p90 wall time; the *ratio* column
divides by the null endpoint (``devkit/probe_plugin``'s ``GET /null``) measured the same
way, so it tells what the bridge adds on top of what any plugin pays to the SDK.
Levels: ``in-process`` (daemon bytes → SDK executor → Endpoint, no stdio) and ``process``
(the plugin subprocess over stdio behind the daemon emulator).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from bridge.moderation import first_keyword
from devkit.daemon import PluginProcess
from devkit.inprocess import InProcessPlugin
from devkit.probe import PROBE_ROOT
from devkit.wire import daemon_request_bytes
from devkit.workspace import App, Script, Workspace

SETTINGS = {"api_key": "bench-key", "app": {"app_id": "bench-chat"}}


@dataclass(frozen=True)
class Result:
    name: str
    level: str
    median_ms: float
    p90_ms: float

    def row(self, baseline: Result | None) -> str:
        ratio = f"{self.median_ms / baseline.median_ms:.2f}x" if baseline else "—"
        return (
            f"| {self.name} | {self.level} | {self.median_ms:.3f} | {self.p90_ms:.3f} | {ratio} |"
        )


def measure(name: str, level: str, call: Callable[[], object], n: int) -> Result:
    for _ in range(max(5, n // 10)):
        call()
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return Result(name, level, statistics.median(samples), samples[int(len(samples) * 0.9) - 1])


def workspace() -> Workspace:
    return Workspace([App("bench-chat", "chat", "Bench")])


def _post(path: str, body: dict, key: str | None = None) -> bytes:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return daemon_request_bytes("POST", path, headers=headers, body=json.dumps(body).encode())


def run(n: int) -> list[tuple[Result, Result | None]]:
    rows: list[tuple[Result, Result | None]] = []
    get_root = daemon_request_bytes("GET", "/", headers={"Authorization": "Bearer bench-key"})
    get_null = daemon_request_bytes("GET", "/null")
    get_missing = daemon_request_bytes("GET", "/nope")
    chat = {"query": "hello", "inputs": {}, "user": "bench"}
    bridge_blocking = _post("/v1/chat-messages", chat, "bench-key")
    bridge_streaming = _post(
        "/v1/chat-messages", {**chat, "response_mode": "streaming"}, "bench-key"
    )
    probe_blocking = _post("/app", {"kind": "chat", "app_id": "bench-chat", "query": "hello",
                                    "inputs": {}, "response_mode": "blocking"})  # fmt: skip

    null_plugin = InProcessPlugin(workspace(), PROBE_ROOT)
    bridge = InProcessPlugin(workspace())
    null_in = measure(
        "null endpoint",
        "in-process",
        lambda: null_plugin.request("GET", "/null", settings={}, raw=get_null),
        n,
    )
    rows.append((null_in, None))
    rows.append(
        (
            measure(
                "GET / diagnostics",
                "in-process",
                lambda: bridge.request("GET", "/", settings=SETTINGS, raw=get_root),
                n,
            ),
            null_in,
        )
    )
    rows.append(
        (
            measure(
                "404 fallback",
                "in-process",
                lambda: bridge.request("GET", "/nope", settings=SETTINGS, raw=get_missing),
                n,
            ),
            null_in,
        )
    )
    rows.append(
        (
            measure(
                "bare SDK chat invoke (probe)",
                "in-process",
                lambda: null_plugin.request("POST", "/app", settings={}, raw=probe_blocking),
                n,
            ),
            null_in,
        )
    )
    rows.append(
        (
            measure(
                "chat-messages blocking",
                "in-process",
                lambda: bridge.request(
                    "POST", "/v1/chat-messages", settings=SETTINGS, raw=bridge_blocking
                ),
                n,
            ),
            null_in,
        )
    )

    with PluginProcess(workspace(), PROBE_ROOT) as null_proc, PluginProcess(workspace()) as proc:
        null_p = measure("null endpoint", "process", lambda: null_proc.request(get_null, {}), n)
        rows.append((null_p, None))
        rows.append(
            (
                measure(
                    "GET / diagnostics", "process", lambda: proc.request(get_root, SETTINGS), n
                ),
                null_p,
            )
        )
        rows.append(
            (
                measure(
                    "bare SDK chat invoke (probe)",
                    "process",
                    lambda: null_proc.request(probe_blocking, {}),
                    n,
                ),
                null_p,
            )
        )
        rows.append(
            (
                measure(
                    "chat-messages blocking",
                    "process",
                    lambda: proc.request(bridge_blocking, SETTINGS),
                    n,
                ),
                null_p,
            )
        )
        rows.append(
            (
                measure(
                    "chat-messages streaming (whole stream)",
                    "process",
                    lambda: proc.request(bridge_streaming, SETTINGS),
                    n,
                ),
                null_p,
            )
        )
    return rows


def time_to_first_byte(n: int, first_delay: float = 0.2) -> list[tuple[str, float, float]]:
    """Streaming TTFB minus the app's first-event delay, bridge vs the bare-SDK probe."""
    ws = Workspace([App("bench-chat", "chat", "Bench", script=Script(first_delay=first_delay))])
    cases = [
        ("bare SDK chat invoke, streamed (probe)", PROBE_ROOT, _post("/app", {
            "kind": "chat", "app_id": "bench-chat", "query": "q", "inputs": {},
            "response_mode": "streaming"})),
        ("chat-messages streaming", None, _post(
            "/v1/chat-messages", {"query": "q", "response_mode": "streaming"}, "bench-key")),
        ("chat/completions streaming (OpenAI)", None, _post(
            "/v1/chat/completions", {"messages": [{"role": "user", "content": "q"}],
                                     "stream": True}, "bench-key")),
    ]  # fmt: skip
    out = []
    for name, root, raw in cases:
        samples = []
        with PluginProcess(ws, root) if root else PluginProcess(ws) as proc:
            for i in range(n + 5):
                start = time.perf_counter()
                reply = proc.send(raw, SETTINGS)
                next(reply.chunks)
                elapsed = (time.perf_counter() - start - first_delay) * 1000
                for _chunk in reply.chunks:
                    pass
                if i >= 5:
                    samples.append(elapsed)
        samples.sort()
        out.append((name, statistics.median(samples), samples[int(len(samples) * 0.9) - 1]))
    return out


def per_chunk_translation(n: int, chunks: int = 200) -> tuple[float, float, float]:
    """OpenAI chunk translation cost: (service-api µs/chunk, openai µs/chunk, difference)."""
    ws = Workspace([App("bench-chat", "chat", "Bench", script=Script(chunks=["tok "] * chunks))])
    bridge = InProcessPlugin(ws)
    dify = _post("/v1/chat-messages", {"query": "q", "response_mode": "streaming"}, "bench-key")
    oai = _post("/v1/chat/completions", {"messages": [{"role": "user", "content": "q"}],
                                         "stream": True}, "bench-key")  # fmt: skip

    def dify_stream() -> object:
        return bridge.request("POST", "/v1/chat-messages", settings=SETTINGS, raw=dify)

    def openai_stream() -> object:
        return bridge.request("POST", "/v1/chat/completions", settings=SETTINGS, raw=oai)

    rounds = max(20, n // 10)
    a = measure("dify", "in-process", dify_stream, rounds).median_ms * 1000 / chunks
    b = measure("openai", "in-process", openai_stream, rounds).median_ms * 1000 / chunks
    return a, b, b - a


def keyword_moderation(n: int) -> list[Result]:
    """Keyword moderation of a 4 KB text: the matcher alone, and the whole extension call."""
    keywords = tuple(f"keyword{i}" for i in range(50))
    text = ("The quick brown fox jumps over the lazy dog. " * 100)[:4096]
    settings = {**SETTINGS, "moderation_keywords": ", ".join(keywords)}
    raw = _post(
        "/extension", {"point": "app.moderation.output", "params": {"text": text}}, "bench-key"
    )
    bridge = InProcessPlugin(workspace())

    def match() -> object:
        return first_keyword(keywords, [text])

    def extension_call() -> object:
        return bridge.request("POST", "/extension", settings=settings, raw=raw)

    return [
        measure("keyword match, 4 KB, 50 keywords", "core", match, n * 10),
        measure("POST /extension moderation.output, 4 KB", "in-process", extension_call, n),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="timed requests per case")
    args = parser.parse_args(argv)
    print("| case | level | median ms | p90 ms | ratio to null |")
    print("|---|---|---|---|---|")
    for result, baseline in run(args.n):
        print(result.row(baseline))
    print()
    print("| keyword moderation | level | median µs | p90 µs |")
    print("|---|---|---|---|")
    for result in keyword_moderation(args.n):
        median_us, p90_us = result.median_ms * 1000, result.p90_ms * 1000
        print(f"| {result.name} | {result.level} | {median_us:.1f} | {p90_us:.1f} |")
    dify_us, openai_us, extra_us = per_chunk_translation(args.n)
    print()
    print("| streaming 200 chunks, in-process | µs per chunk |")
    print("|---|---|")
    print(f"| Dify events passed through (chat-messages) | {dify_us:.1f} |")
    print(f"| translated to chat.completion.chunk (chat/completions) | {openai_us:.1f} |")
    print(f"| translation overhead per chunk | {extra_us:.1f} |")
    print()
    print("Time to first byte minus the app's own 200 ms first-event delay (process level):")
    print()
    print("| case | median ms | p90 ms |")
    print("|---|---|---|")
    for name, median, p90 in time_to_first_byte(max(20, args.n // 10)):
        print(f"| {name} | {median:.3f} | {p90:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
