"""Benchmarks: the bridge's per-request cost against a null plugin on the same SDK.

``./dev bench [--n 300] [--routes TEXT] [--routes-only]`` prints Markdown tables. The first
has every route at process level (the plugin subprocess over stdio behind the daemon
emulator): the daemon round trips of one request (app runs, ``fetch_app``, storage calls —
counted on the emulated workspace), p50 and p95 wall time, the ratio of its p50 to the *null
plugin*'s (``devkit/probe_plugin`` on the same SDK: ``GET /null``, or one app invoke of the
same kind), and the plugin process's CPU per request. There are two null plugins: the probe on
the bare SDK, and the same probe with App Bridge's SDK seams installed (``bridge.transport.sdk``:
``APP_BRIDGE_PROBE_SEAMS=1``), so each route has a ratio to each — the second compares like
with like. A route that keeps records has a third: the seamed probe making that route's
storage round trips after its invoke, one after another, and nothing else (*same round trips*:
what the bridge's own code adds to the calls its guarantees need). Each route's requests
alternate with every baseline's, one request per plugin process in turn, so all see the same
machine load. Then: keyword moderation, per-chunk translation (in-process), streaming time to
first byte, and what a request adds to an app that takes time (where writes beside the run
can overlap it, as they cannot with the instant apps of the first table).

The emulator side of this process stays unpatched, OS threads as the daemon's goroutines are
real threads: ``dify_plugin`` (which applies gevent's monkey patching on import) is imported
only by the in-process sections, which run in a child process (``--in-process``). Run under
gevent, the emulator's threads were greenlets of one loop and its pipes cooperative files —
costing more per relayed message than the plugin's own work (issue #14).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bridge.protocols import webhook
from bridge.protocols.moderation import first_keyword
from bridge.storage import conversations, transcripts
from bridge.storage.records import Records
from devkit.daemon import PluginProcess
from devkit.probe import PROBE_ROOT
from devkit.wire import daemon_request_bytes
from devkit.workspace import App, DirectStorage, Script, Workspace

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


BROWSER = {"Accept-Encoding": "gzip, deflate, br, zstd"}  # what Chromium and Firefox send


def workspace() -> Workspace:
    return Workspace([App("bench-chat", "chat", "Bench")])


def _post(path: str, body: dict, key: str | None = None) -> bytes:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return daemon_request_bytes("POST", path, headers=headers, body=json.dumps(body).encode())


def _probe_invoke(
    kind: str, app_id: str, query: str = "hello", storage: list[dict] | None = None
) -> bytes:
    """The null plugin's ``POST /app``: one ``session.app.<kind>.invoke``, streamed back (and
    the ``storage`` calls, made one after another once the first event is on its way)."""
    body: dict = {"kind": kind, "app_id": app_id, "inputs": {}, "response_mode": "streaming"}
    if kind == "chat":
        body["query"] = query
    if storage:
        body["storage"] = storage
    return _post("/app", body)


# The floor probe reads and rewrites one bucket holding one record, the size of the bridge's
# (an 80-bit tag, an expiry, an owner digest: storage.md), once per ``get`` + ``set`` pair.
FLOOR_KEY = "bench/floor/b00000"
FLOOR_VALUE = json.dumps(
    {"exp": 4102444800.0, "v": {"r": [["0" * 20, 4102444800.0, "0" * 22]]}},
    separators=(",", ":"),
)
INVOKES = {  # a baseline's app: kind and id
    "invoke": ("chat", "bench-chat"),
    "invoke-completion": ("completion", "bench-completion"),
    "invoke-workflow": ("workflow", "bench-workflow"),
}


@dataclass(frozen=True)
class Floor:
    """A route's storage round trips: the seamed probe's invoke of ``baseline``'s app, then
    ``pairs`` × (one ``get`` + one ``set``)."""

    baseline: str
    pairs: int

    @property
    def name(self) -> str:
        kind = INVOKES[self.baseline][0]
        return f"null plugin + seams: one {kind} invoke, then {self.pairs} get + {self.pairs} set"

    def route(self) -> Route:
        kind, app_id = INVOKES[self.baseline]
        calls = [{"op": "get", "key": FLOOR_KEY},
                 {"op": "set", "key": FLOOR_KEY, "value": FLOOR_VALUE}] * self.pairs  # fmt: skip
        raw = _probe_invoke(kind, app_id, storage=calls)
        return Route(self.name, self.baseline, lambda i: raw, probe=True)


# -- the route table: every route at process level, in one run ------------------------------


@dataclass(frozen=True)
class RouteResult:
    name: str
    baseline: str
    p50_ms: float
    p95_ms: float
    cpu_us: float  # plugin process CPU per request
    app: float  # backwards invocations per request, by kind
    fetch: float
    storage: dict[str, float]  # storage operations per request, by operation
    # the baselines' p50s, measured interleaved with this route: the null plugin on the bare
    # SDK, the null plugin with App Bridge's SDK seams, and (a route that keeps records) the
    # seamed null plugin making the same storage round trips
    base_p50_ms: tuple[float, ...] = ()

    def row(self) -> str:
        ratios = [f"{self.p50_ms / base:.2f}×" if base else "—" for base in self.base_p50_ms]
        ratios += ["—"] * (3 - len(ratios))
        ops = " + ".join(f"{count:.2g} {op}" for op, count in self.storage.items()) or "0"
        trips = f"{self.app:.2g} app, {self.fetch:.2g} fetch, storage {ops}"
        return (
            f"| {self.name} | {trips} | {self.p50_ms:.3f} | {self.p95_ms:.3f} | {ratios[0]} "
            f"| {ratios[1]} | {ratios[2]} | {self.baseline} | {self.cpu_us:.0f} |"
        )


def _cpu_seconds(pid: int) -> float:
    """CPU time of every thread of ``pid`` (Linux ``schedstat``, nanoseconds)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


def _percentile(samples: list[float], fraction: float) -> float:
    return samples[min(len(samples) - 1, max(0, round(len(samples) * fraction) - 1))]


@dataclass
class Route:
    """One benchmarked request; ``make(i)`` gives the i-th request's raw bytes."""

    name: str
    baseline: str
    make: Callable[[int], bytes]
    probe: bool = False
    settings: dict | None = None
    prepare: Callable[[PluginProcess, int], None] | None = None
    floor: Floor | None = None  # the round trips of a route that keeps records


def measure_route(
    proc: PluginProcess,
    route: Route,
    n: int,
    baselines: tuple[tuple[PluginProcess, Route], ...] = (),
) -> RouteResult:
    """Time ``route``; its requests alternate with each baseline's, so the ratios compare
    them under the same machine load."""
    settings = {} if route.probe else (route.settings or SETTINGS)
    warm = max(5, n // 10)
    if route.prepare is not None:
        route.prepare(proc, warm + n)
    for i in range(warm):
        proc.request(route.make(i), settings)
        for base_proc, base_route in baselines:
            base_proc.request(base_route.make(i), {})
    ws = proc.workspace
    pid = proc._proc.pid if proc._proc else 0
    apps, fetches = len(ws.invocations), len(ws.fetches)
    cpu = 0.0
    samples: list[float] = []
    base_samples: list[list[float]] = [[] for _ in baselines]
    ops_at = len(ws.storage.ops)
    for i in range(warm, warm + n):
        for (base_proc, base_route), timed in zip(baselines, base_samples, strict=True):
            base_raw = base_route.make(i)
            start = time.perf_counter()
            base_proc.request(base_raw, {})
            timed.append((time.perf_counter() - start) * 1000)
        raw = route.make(i)
        cpu_before = _cpu_seconds(pid)
        start = time.perf_counter()
        reply = proc.request(raw, settings)
        samples.append((time.perf_counter() - start) * 1000)
        cpu += _cpu_seconds(pid) - cpu_before
        assert reply.status < 500, f"{route.name}: {reply.status} {reply.body[:200]!r}"
        assert not (route.probe and b'{"exception"' in reply.body), f"{route.name}: {reply.body!r}"
    ops = {op: count / n for op, count in collections.Counter(ws.storage.ops[ops_at:]).items()}
    samples.sort()
    return RouteResult(
        route.name, route.baseline, statistics.median(samples), _percentile(samples, 0.95),
        cpu / n * 1e6, (len(ws.invocations) - apps) / n, (len(ws.fetches) - fetches) / n,
        ops, tuple(statistics.median(timed) for timed in base_samples),
    )  # fmt: skip


def bench_workspace() -> Workspace:
    return Workspace([
        App("bench-chat", "chat", "Bench"),
        App("bench-completion", "completion", "Bench"),
        App("bench-workflow", "workflow", "Bench"),
    ])  # fmt: skip


def routes() -> list[Route]:
    key = "bench-key"
    chat = {"query": "hello", "inputs": {}, "user": "bench"}
    conversations: list[str] = []
    histories: list[list[dict]] = []

    def fixed(raw: bytes) -> Callable[[int], bytes]:
        return lambda i: raw

    def start_conversation(proc: PluginProcess, count: int) -> None:
        reply = proc.request(_post("/v1/chat-messages", chat, key), SETTINGS)
        conversations.append(json.loads(reply.body)["conversation_id"])

    def continue_conversation(i: int) -> bytes:
        return _post("/v1/chat-messages", {**chat, "conversation_id": conversations[0]}, key)

    def first_exchanges(proc: PluginProcess, count: int) -> None:
        for i in range(count):
            messages = [{"role": "user", "content": f"hello {i}"}]
            reply = proc.request(_post("/v1/chat/completions", {"messages": messages}, key),
                                 SETTINGS)  # fmt: skip
            answer = json.loads(reply.body)["choices"][0]["message"]["content"]
            histories.append([*messages, {"role": "assistant", "content": answer},
                              {"role": "user", "content": "and then?"}])  # fmt: skip

    def first_turn(stream: bool) -> Callable[[int], bytes]:
        def make(i: int) -> bytes:  # chats open differently, as real ones do
            messages = [{"role": "user", "content": f"hi there, {uuid.uuid4()}"}]
            return _post("/v1/chat/completions", {"messages": messages, "stream": stream}, key)

        return make

    def openai_continued(i: int) -> bytes:
        return _post("/v1/chat/completions", {"messages": histories[i]}, key)

    hook = {"api_key": key, "app": {"app_id": "bench-workflow"}}
    hook_body = json.dumps({"inputs": {"query": "hello"}}).encode()

    def delivery(i: int) -> bytes:
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}",
                   "Idempotency-Key": f"delivery-{uuid.uuid4()}"}  # fmt: skip
        return daemon_request_bytes("POST", "/webhook", headers=headers, body=hook_body)

    replayed = daemon_request_bytes("POST", "/webhook", body=hook_body, headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {key}",
        "Idempotency-Key": "delivery-replayed"})  # fmt: skip
    get = {"Authorization": f"Bearer {key}"}
    completion = {"inputs": {"query": "hello"}, "user": "bench"}
    moderation = {"point": "app.moderation.input",
                  "params": {"inputs": {}, "query": "hello"}}  # fmt: skip
    return [
        Route("null plugin: GET /null", "null", fixed(daemon_request_bytes("GET", "/null")), True),
        *(Route(f"null plugin: one {kind} invoke", baseline, fixed(_probe_invoke(kind, app_id)),
                True) for baseline, (kind, app_id) in INVOKES.items()),
        Route("POST /v1/chat-messages blocking, new conversation", "invoke",
              fixed(_post("/v1/chat-messages", chat, key)), floor=Floor("invoke", 1)),
        Route("POST /v1/chat-messages blocking, continued", "invoke", continue_conversation,
              prepare=start_conversation),
        Route("POST /v1/chat-messages streaming, new conversation", "invoke",
              fixed(_post("/v1/chat-messages", {**chat, "response_mode": "streaming"}, key)),
              floor=Floor("invoke", 1)),
        Route("POST /v1/completion-messages blocking", "invoke-completion",
              fixed(_post("/v1/completion-messages", completion, key)),
              settings={**SETTINGS, "app": {"app_id": "bench-completion"}}),
        Route("POST /v1/workflows/run blocking", "invoke-workflow",
              fixed(_post("/v1/workflows/run", completion, key)),
              settings={**SETTINGS, "app": {"app_id": "bench-workflow"}}),
        Route("POST /v1/chat/completions, first turn", "invoke", first_turn(False),
              floor=Floor("invoke", 2)),
        Route("POST /v1/chat/completions, continued from history", "invoke", openai_continued,
              prepare=first_exchanges, floor=Floor("invoke", 1)),
        Route("POST /v1/chat/completions streaming, first turn", "invoke", first_turn(True),
              floor=Floor("invoke", 2)),
        Route("POST /webhook, new Idempotency-Key (workflow app)", "invoke-workflow", delivery,
              settings=hook, floor=Floor("invoke-workflow", 1)),
        Route("POST /webhook, replayed delivery", "null", fixed(replayed), settings=hook),
        Route("POST /extension moderation (keywords)", "null",
              fixed(_post("/extension", moderation, key))),
        Route("GET /v1/parameters", "null",
              fixed(daemon_request_bytes("GET", "/v1/parameters", headers=get))),
        Route("GET /v1/models", "null",
              fixed(daemon_request_bytes("GET", "/v1/models", headers=get))),
        Route("GET / diagnostics (browser: gzip)", "null",
              fixed(daemon_request_bytes("GET", "/", headers={**get, **BROWSER}))),
        Route("GET / diagnostics (no Accept-Encoding)", "null",
              fixed(daemon_request_bytes("GET", "/", headers=get))),
        Route("404 fallback", "null", fixed(daemon_request_bytes("GET", "/nope", headers=get))),
    ]  # fmt: skip


def busy_endpoint(workspace: Workspace, endpoint_id: str = "endpoint-process") -> None:
    """The steady state of a busy endpoint: every bucket already written once (a bucket's very
    first write costs one ``exist`` more, see :class:`bridge.storage.slots.BucketStore`)."""
    records = Records(DirectStorage(workspace.storage), endpoint_id)
    for kind, buckets in (
        (conversations.KIND, conversations.BUCKETS),
        (transcripts.KIND, transcripts.BUCKETS),
        (webhook.USER_CONVERSATIONS, webhook.USER_CONVERSATION_BUCKETS),
    ):
        for index in range(buckets):
            records.store(kind, f"b{index:05d}", {"r": []})


def _emulator_unpatched() -> None:
    """The emulator runs on OS threads, as the daemon on goroutines (see the module doc)."""
    from gevent import monkey  # noqa: PLC0415 - importing it patches nothing

    if monkey.is_module_patched("threading"):
        raise RuntimeError("the daemon emulator would run under gevent: import no dify_plugin here")


SEAMED_PROBE_ENV = {"APP_BRIDGE_PROBE_SEAMS": "1"}  # devkit/probe_plugin/main.py reads it
# On Dify's daemon a body of several chunks must end >= 50 ms after its first
# (bridge.transport.responses daemon_safe): a floor for streams that finish faster, nothing for
# real apps. The bench's scripted apps answer at once, so the floor would be all it measured: it
# is turned off here, and with it the emulator's model of the daemon's cut (which it exists to
# avoid).
NO_GRACE_ENV = {"APP_BRIDGE_END_GRACE_MS": "0"}


def run_routes(n: int, only: str = "") -> list[RouteResult]:
    """Every route (or those whose name contains ``only``) and the null plugins' baselines,
    all four plugin processes alive at once; each route alternates with its baselines.

    The floors (the seamed probe making a route's round trips) run in a process of their own,
    so that every process, as every baseline, serves one request in turn."""
    _emulator_unpatched()
    results: list[RouteResult] = []
    with (
        PluginProcess(bench_workspace(), PROBE_ROOT, daemon_cut=False) as null_proc,
        PluginProcess(
            bench_workspace(), PROBE_ROOT, env=SEAMED_PROBE_ENV, daemon_cut=False
        ) as seamed_proc,
        PluginProcess(
            bench_workspace(), PROBE_ROOT, env=SEAMED_PROBE_ENV, daemon_cut=False
        ) as floor_proc,
        PluginProcess(bench_workspace(), env=NO_GRACE_ENV, daemon_cut=False) as proc,
    ):
        busy_endpoint(proc.workspace)
        DirectStorage(floor_proc.workspace.storage).set(FLOOR_KEY, FLOOR_VALUE.encode())
        all_routes = routes()
        baselines = {route.baseline: route for route in all_routes if route.probe}
        floors: dict[Floor, Route] = {}
        for route in all_routes:
            if route.probe:
                results.append(measure_route(null_proc, route, n))
                seamed = measure_route(seamed_proc, route, n, ((null_proc, route),))
                seamed = dataclasses.replace(
                    seamed,
                    name=route.name.replace("null plugin", "null plugin + seams"),
                    base_p50_ms=(*seamed.base_p50_ms, 0.0),
                )
                results.append(seamed)
            elif only in route.name:
                base = baselines[route.baseline]
                pairs = [(null_proc, base), (seamed_proc, base)]
                if route.floor is not None:
                    if route.floor not in floors:  # measured once, before its first route
                        floors[route.floor] = route.floor.route()
                        results.append(
                            measure_route(floor_proc, floors[route.floor], n, tuple(pairs))
                        )
                    pairs.append((floor_proc, floors[route.floor]))
                results.append(measure_route(proc, route, n, tuple(pairs)))
    return results


def route_table(results: list[RouteResult]) -> list[str]:
    lines = [
        "| route | daemon round trips per request | p50 ms | p95 ms | ratio (p50), bare SDK | "
        "ratio (p50), SDK + seams | ratio (p50), same round trips | baseline | "
        "plugin CPU µs/request |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    return lines + [result.row() for result in results]


def time_to_first_byte(n: int, first_delay: float = 0.2) -> list[tuple[str, float, float]]:
    """Streaming TTFB minus the app's first-event delay: the bridge against the probe on the
    bare SDK and on the SDK with App Bridge's seams."""
    _emulator_unpatched()
    ws = Workspace([App("bench-chat", "chat", "Bench", script=Script(first_delay=first_delay))])
    invoke = _probe_invoke("chat", "bench-chat", query="q")
    cases = [
        ("bare SDK chat invoke, streamed (probe)", "probe", invoke),
        ("SDK + seams chat invoke, streamed (probe)", "seamed", invoke),
        ("chat-messages streaming", "bridge", _post(
            "/v1/chat-messages", {"query": "q", "response_mode": "streaming"}, "bench-key")),
        ("chat/completions streaming (OpenAI)", "bridge", _post(
            "/v1/chat/completions", {"messages": [{"role": "user", "content": "q"}],
                                     "stream": True}, "bench-key")),
    ]  # fmt: skip
    samples: list[list[float]] = [[] for _ in cases]
    with (
        PluginProcess(ws, PROBE_ROOT, daemon_cut=False) as probe,
        PluginProcess(ws, PROBE_ROOT, env=SEAMED_PROBE_ENV, daemon_cut=False) as seamed,
        PluginProcess(ws, env=NO_GRACE_ENV, daemon_cut=False) as bridge,
    ):  # the cases alternate, so each sees the same machine load
        procs = {"probe": probe, "seamed": seamed, "bridge": bridge}
        for i in range(n + 5):
            for index, (_name, which, raw) in enumerate(cases):
                proc = procs[which]
                start = time.perf_counter()
                reply = proc.send(raw, SETTINGS)
                next(reply.chunks)
                elapsed = (time.perf_counter() - start - first_delay) * 1000
                for _chunk in reply.chunks:
                    pass
                if i >= 5:
                    samples[index].append(elapsed)
    out = []
    for (name, _which, _raw), timed in zip(cases, samples, strict=True):
        timed.sort()
        out.append((name, statistics.median(timed), _percentile(timed, 0.9)))
    return out


def added_latency(n: int, delay: float = 0.005) -> list[tuple[str, float, float]]:
    """What a request adds to an app that takes time (its events ``delay`` apart): each case's
    p50 minus the seamed probe's (one invoke of the same app, streamed back), alternating.

    Against :func:`run_routes`' instant apps nothing a request writes beside the run can
    overlap it; here a new conversation's owner record is written while the app generates,
    and what is left is what the request does before the app starts or after it ends."""
    _emulator_unpatched()
    ws = Workspace([App("bench-chat", "chat", "Bench", script=Script(delay=delay))])
    chat = {"query": "hello", "inputs": {}, "user": "bench"}
    key = "bench-key"
    invoke = _probe_invoke("chat", "bench-chat")

    def first_turn(i: int) -> bytes:  # one word, as "hello": the same answer, as many events
        messages = [{"role": "user", "content": f"hello-{uuid.uuid4()}"}]
        return _post("/v1/chat/completions", {"messages": messages}, key)

    conversation: list[str] = []

    def continued(i: int) -> bytes:
        return _post("/v1/chat-messages", {**chat, "conversation_id": conversation[0]}, key)

    cases: list[tuple[str, str, Callable[[int], bytes]]] = [
        ("SDK + seams chat invoke, streamed (probe)", "seamed", lambda i: invoke),
        ("POST /v1/chat-messages blocking, new conversation", "bridge",
         lambda i: _post("/v1/chat-messages", chat, key)),
        ("POST /v1/chat-messages streaming, new conversation", "bridge",
         lambda i: _post("/v1/chat-messages", {**chat, "response_mode": "streaming"}, key)),
        ("POST /v1/chat-messages blocking, continued", "bridge", continued),
        ("POST /v1/chat/completions, first turn", "bridge", first_turn),
    ]  # fmt: skip
    samples: list[list[float]] = [[] for _ in cases]
    with (
        PluginProcess(ws, PROBE_ROOT, env=SEAMED_PROBE_ENV, daemon_cut=False) as seamed,
        PluginProcess(ws, env=NO_GRACE_ENV, daemon_cut=False) as bridge,
    ):
        busy_endpoint(bridge.workspace)
        procs = {"seamed": seamed, "bridge": bridge}
        reply = bridge.request(_post("/v1/chat-messages", chat, key), SETTINGS)
        conversation.append(json.loads(reply.body)["conversation_id"])
        for i in range(n + 3):
            for index, (name, which, make) in enumerate(cases):
                raw = make(i)
                start = time.perf_counter()
                reply = procs[which].request(raw, {} if which == "seamed" else SETTINGS)
                elapsed = (time.perf_counter() - start) * 1000
                assert reply.status == 200, f"{name}: {reply.status} {reply.body[:200]!r}"
                if i >= 3:
                    samples[index].append(elapsed)
    base = statistics.median(samples[0])
    out = []
    for (name, _which, _make), timed in zip(cases, samples, strict=True):
        p50 = statistics.median(timed)
        out.append((name, p50, p50 - base))
    return out


def per_chunk_translation(n: int, chunks: int = 200) -> tuple[float, float, float]:
    """OpenAI chunk translation cost: (service-api µs/chunk, openai µs/chunk, difference)."""
    from devkit.inprocess import InProcessPlugin  # noqa: PLC0415 - patches: child process only

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
    from devkit.inprocess import InProcessPlugin  # noqa: PLC0415 - patches: child process only

    bridge = InProcessPlugin(workspace())

    def match() -> object:
        return first_keyword(keywords, [text])

    def extension_call() -> object:
        return bridge.request("POST", "/extension", settings=settings, raw=raw)

    return [
        measure("keyword match, 4 KB, 50 keywords", "core", match, n * 10),
        measure("POST /extension moderation.output, 4 KB", "in-process", extension_call, n),
    ]


def in_process_sections(n: int) -> None:
    """The in-process tables (the SDK's executor in this process: gevent-patched)."""
    print("| keyword moderation | level | median µs | p90 µs |")
    print("|---|---|---|---|")
    for result in keyword_moderation(n):
        median_us, p90_us = result.median_ms * 1000, result.p90_ms * 1000
        print(f"| {result.name} | {result.level} | {median_us:.1f} | {p90_us:.1f} |")
    dify_us, openai_us, extra_us = per_chunk_translation(n)
    print()
    print("| streaming 200 chunks, in-process | µs per chunk |")
    print("|---|---|")
    print(f"| Dify events passed through (chat-messages) | {dify_us:.1f} |")
    print(f"| translated to chat.completion.chunk (chat/completions) | {openai_us:.1f} |")
    print(f"| translation overhead per chunk | {extra_us:.1f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="timed requests per case")
    parser.add_argument("--routes", default="", help="only routes whose name contains this")
    parser.add_argument("--routes-only", action="store_true", help="skip the other sections")
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.in_process:  # the child process of a full run
        in_process_sections(args.n)
        return 0
    print(f"Every route, process level, n = {args.n} per case (plugin over stdio behind the")
    print("daemon emulator; ratio = p50 over the baseline's p50, measured in the same run):")
    print()
    for line in route_table(run_routes(args.n, args.routes)):
        print(line)
    if args.routes_only:
        return 0
    print(flush=True)
    # dify_plugin patches the whole process with gevent on import: never in this one. The
    # in-process stream has no daemon to cut it either: without the end grace (read at import)
    subprocess.run(
        [sys.executable, "-m", "devkit.bench", "--in-process", "--n", str(args.n)],
        cwd=Path(__file__).resolve().parent.parent,
        env={**os.environ, **NO_GRACE_ENV},
        check=True,
    )
    print()
    print("Time to first byte minus the app's own 200 ms first-event delay (process level):")
    print()
    print("| case | median ms | p90 ms |")
    print("|---|---|---|")
    for name, median, p90 in time_to_first_byte(max(20, args.n // 10)):
        print(f"| {name} | {median:.3f} | {p90:.3f} |")
    print()
    print("What a request adds to an app whose 7 events come 5 ms apart (process level,")
    print("alternating; p50 minus the seamed probe's):")
    print()
    print("| case | p50 ms | added ms |")
    print("|---|---|---|")
    for name, p50, added in added_latency(max(30, args.n // 5)):
        print(f"| {name} | {p50:.3f} | {added:+.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
