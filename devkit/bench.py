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
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from devkit.daemon import PluginProcess
from devkit.inprocess import InProcessPlugin
from devkit.probe import PROBE_ROOT
from devkit.wire import daemon_request_bytes
from devkit.workspace import App, Workspace

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


def run(n: int) -> list[tuple[Result, Result | None]]:
    rows: list[tuple[Result, Result | None]] = []
    get_root = daemon_request_bytes("GET", "/", headers={"Authorization": "Bearer bench-key"})
    get_null = daemon_request_bytes("GET", "/null")
    get_missing = daemon_request_bytes("GET", "/nope")

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
    return rows  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="timed requests per case")
    args = parser.parse_args(argv)
    print("| case | level | median ms | p90 ms | ratio to null |")
    print("|---|---|---|---|---|")
    for result, baseline in run(args.n):
        print(result.row(baseline))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
