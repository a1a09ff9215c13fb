"""Benchmark of the Responses API face against the Chat Completions stream (not a test).

``.venv/bin/python -m devkit.bench_responses [--n 200]`` prints Markdown tables:

- per-event translation cost, in-process: a 200-event chat stream passed through
  (``/v1/chat-messages``), as ``chat.completion.chunk`` frames and as Responses events;
- time to first byte over stdio behind the daemon emulator, minus the app's own
  first-event delay: Chat Completions vs Responses (fresh and continued);
- storage round trips per Responses request (counted, deterministic).

Self-contained on purpose (``devkit.bench`` is the per-route benchmark).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from types import SimpleNamespace

from bridge.protocols.openai_api import _Completion
from bridge.protocols.openai_responses import EventWriter, Translation
from devkit.bench import NO_GRACE_ENV
from devkit.daemon import PluginProcess
from devkit.inprocess import InProcessPlugin
from devkit.wire import daemon_request_bytes
from devkit.workspace import App, Script, Workspace

KEY = "bench-key"
SETTINGS = {"api_key": KEY, "app": {"app_id": "bench-chat"}}


def _post(path: str, body: dict) -> bytes:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"}
    return daemon_request_bytes("POST", path, headers=headers, body=json.dumps(body).encode())


def _median_ms(call: Callable[[], object], n: int) -> tuple[float, float]:
    for _ in range(max(3, n // 10)):
        call()
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[max(0, int(len(samples) * 0.9) - 1)]


STREAMS = {
    "Dify events passed through (chat-messages)": (
        "/v1/chat-messages", {"query": "q", "response_mode": "streaming"}),
    "chat.completion.chunk (chat/completions)": (
        "/v1/chat/completions", {"messages": [{"role": "user", "content": "q"}], "stream": True}),
    "Responses events (responses)": ("/v1/responses", {"input": "q", "stream": True}),
}  # fmt: skip


def per_event(n: int, events: int = 200) -> list[tuple[str, float]]:
    """µs per app text event of a whole in-process stream, per face."""
    ws = Workspace([App("bench-chat", "chat", "Bench", script=Script(chunks=["tok "] * events))])
    plugin = InProcessPlugin(ws)
    out = []
    for name, (path, body) in STREAMS.items():
        raw = _post(path, body)

        def stream(path: str = path, raw: bytes = raw) -> object:
            return plugin.request("POST", path, settings=SETTINGS, raw=raw)

        median, _ = _median_ms(stream, n)
        out.append((name, median * 1000 / events))
    return out


def core_translation(n: int) -> tuple[float, float]:
    """µs to turn one Dify ``message`` event into one frame: (Responses, Chat Completions)."""
    event = {"event": "message", "conversation_id": "c", "message_id": "m", "created_at": 1,
             "task_id": "t", "id": "m", "answer": "tok "}  # fmt: skip
    translation, writer = Translation(), EventWriter()

    def one() -> object:
        text = translation.feed(event)
        return writer.frame("response.output_text.delta", item_id="msg_x", output_index=0,
                            content_index=0, delta=text, logprobs=[])  # fmt: skip

    face = SimpleNamespace(model="m")

    def chat_one() -> object:  # what chat/completions does per text event
        return _Completion._chunk(face, "chatcmpl-x", 1, {"content": str(event["answer"])})  # type: ignore[arg-type]

    rounds = n * 50
    timings = []
    for call in (one, chat_one):
        start = time.perf_counter()
        for _ in range(rounds):
            call()
        timings.append((time.perf_counter() - start) * 1e6 / rounds)
    return timings[0], timings[1]


def time_to_first_byte(n: int, first_delay: float = 0.1) -> list[tuple[str, float, float]]:
    """First byte of a stream, minus the app's delay; the continued case follows its chain."""
    ws = Workspace([App("bench-chat", "chat", "Bench", script=Script(first_delay=first_delay))])
    out = []
    with PluginProcess(ws, env=NO_GRACE_ENV, daemon_cut=False) as proc:
        latest = json.loads(proc.request(_post("/v1/responses", {"input": "q"}), SETTINGS).body)
        chat = {"messages": [{"role": "user", "content": "q"}], "stream": True}
        cases: dict[str, Callable[[], bytes]] = {
            "chat/completions stream": lambda: _post("/v1/chat/completions", chat),
            "responses stream": lambda: _post("/v1/responses", {"input": "q", "stream": True}),
            "responses stream, previous_response_id": lambda: _post(
                "/v1/responses",
                {"input": "q", "stream": True, "previous_response_id": latest["id"]},
            ),
        }
        for name, make in cases.items():
            samples = []
            for i in range(n + 3):
                raw = make()
                start = time.perf_counter()
                reply = proc.send(raw, SETTINGS)
                head = next(reply.chunks)
                elapsed = (time.perf_counter() - start - first_delay) * 1000
                if reply.status != 200:
                    raise RuntimeError(f"{name}: HTTP {reply.status}: {head[:200]!r}")
                body = head + b"".join(reply.chunks)
                if b"response.created" in head:  # continue from the newest response next time
                    created = body.split(b"\n", 2)[1][len(b"data: ") :]
                    latest = json.loads(created)["response"]
                if i >= 3:
                    samples.append(elapsed)
            samples.sort()
            out.append((name, statistics.median(samples), samples[int(len(samples) * 0.9) - 1]))
    return out


def round_trips() -> list[tuple[str, list[str]]]:
    ws = Workspace([App("bench-chat", "chat", "Bench")])
    plugin = InProcessPlugin(ws)

    def ops(body: dict) -> tuple[dict, list[str]]:
        ws.storage.ops.clear()
        r = plugin.request(
            "POST", "/v1/responses", settings=SETTINGS, raw=_post("/v1/responses", body)
        )
        return json.loads(r.body), list(ws.storage.ops)

    first, new_ops = ops({"input": "q"})
    _, continued_ops = ops({"input": "q", "previous_response_id": first["id"]})
    history = [
        {"role": "user", "content": "q"},
        first["output"][0],
        {"role": "user", "content": "r"},
    ]
    _, history_ops = ops({"input": history})
    return [
        ("new response", new_ops),
        ("previous_response_id", continued_ops),
        ("resent history with our message id", history_ops),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="timed requests per case")
    args = parser.parse_args(argv)
    print("| 200-event stream, in-process | µs per event |")
    print("|---|---|")
    for name, us in per_event(max(20, args.n // 4)):
        print(f"| {name} | {us:.1f} |")
    responses_us, chat_us = core_translation(args.n)
    print(f"| core: one message event → one chat.completion.chunk frame | {chat_us:.2f} |")
    print(f"| core: one message event → one output_text.delta frame | {responses_us:.2f} |")
    print()
    print("Time to first byte minus the app's 100 ms first-event delay (process level):")
    print()
    print("| case | median ms | p90 ms |")
    print("|---|---|---|")
    for name, median, p90 in time_to_first_byte(max(20, args.n // 4)):
        print(f"| {name} | {median:.3f} | {p90:.3f} |")
    print()
    print("| Responses request | storage round trips |")
    print("|---|---|")
    for name, ops in round_trips():
        print(f"| {name} | {len(ops)} ({', '.join(ops)}) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
