"""Benchmark: how long one heavy webhook stalls every other request (issue 10 item 5).

``python -m devkit.stall`` starts the plugin process behind the daemon emulator, sends one
heavy ``POST /webhook`` per case on one endpoint while another endpoint is polled with
``GET /v1/parameters`` back to back, and prints a Markdown table: the heavy request's
status and duration, the polls' median latency before (idle) and the worst poll latency
while the heavy request ran — the stall every other endpoint of the process sees.

A benchmark, not a test: numbers depend on the machine (see docs/limits.md for the bounds
that keep the worst case bounded everywhere).
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from dataclasses import dataclass

from devkit.daemon import PluginProcess
from devkit.wire import daemon_request_bytes
from devkit.workspace import App, Workspace

KEY = "stall-key"
APP = "stall-flow"
HEAVY_ENDPOINT = "endpoint-heavy"
POLLED_ENDPOINT = "endpoint-polled"
SETTINGS = {"api_key": KEY, "app": {"app_id": APP}}


@dataclass(frozen=True)
class Case:
    name: str
    mib: float
    settings: dict
    path: str = "/webhook"


MAP_ALL = "join(',', map(&to_string(@), body.items))"
MAP_20 = "[" + ", ".join(["length(map(&to_string(@), body.items))"] * 20) + "] | to_string(@)"
CASES = (
    Case("9 MiB body, map() mapping (0.5.0: 6.5 s stall)", 9.0, {"webhook_query": MAP_ALL}),
    Case("3.9 MiB body (under the bound), map() mapping", 3.9, {"webhook_query": MAP_ALL}),
    Case("3.9 MiB body, one-field mapping", 3.9, {"webhook_query": "body.items[0].name"}),
    Case("3.9 MiB body, 20 map() passes (over the step budget)", 3.9, {"webhook_query": MAP_20}),
    Case("9 MiB extension ping (JSON parse + checks only)", 9.0, {}, "/extension"),
)


def body_of(mib: float, path: str = "/webhook") -> bytes:
    """A JSON object ``{"items": [...]}`` of just under ``mib`` MiB (a ping for /extension)."""
    item = {"id": 0, "name": "item-000000", "tags": ["a", "b"], "price": 1.5}
    size = len(json.dumps({**item, "id": 100000})) + 2
    count = int(mib * 1024 * 1024 / size)
    items = [{**item, "id": i, "name": f"item-{i:06d}"} for i in range(count)]
    if path == "/extension":
        return json.dumps({"point": "ping", "params": {"items": items}}).encode()
    return json.dumps({"items": items}).encode()


def workspace() -> Workspace:
    return Workspace([App(APP, "workflow", "Stall")])


def measure(proc: PluginProcess, case: Case, poll: bytes, polls_before: int) -> str:
    """One table row: idle polls, then polls back to back while the heavy request runs."""
    idle = []
    for _ in range(polls_before):
        started = time.perf_counter()
        proc.request(poll, SETTINGS, endpoint_id=POLLED_ENDPOINT)
        idle.append((time.perf_counter() - started) * 1000)
    heavy = daemon_request_bytes(
        "POST",
        case.path,
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
        body=body_of(case.mib, case.path),
    )
    done = threading.Event()
    outcome: dict[str, float] = {}

    def send_heavy() -> None:
        started = time.perf_counter()
        response = proc.request(heavy, {**SETTINGS, **case.settings}, endpoint_id=HEAVY_ENDPOINT)
        outcome.update(status=response.status, seconds=time.perf_counter() - started)
        done.set()

    thread = threading.Thread(target=send_heavy)
    thread.start()
    during = []
    while not done.is_set():
        started = time.perf_counter()
        proc.request(poll, SETTINGS, endpoint_id=POLLED_ENDPOINT)
        during.append((time.perf_counter() - started) * 1000)
    thread.join()
    return (
        f"| {case.name} | {outcome['status']:.0f} | {outcome['seconds']:.2f} | "
        f"{statistics.median(idle):.1f} | {max(during or [0]):.0f} | {len(during)} |"
    )


def run(polls_before: int = 30) -> list[str]:
    poll = daemon_request_bytes("GET", "/v1/parameters", headers={"Authorization": f"Bearer {KEY}"})
    rows = [
        "| case | heavy status | heavy duration (s) | idle poll p50 (ms) | worst poll during (ms) "
        "| polls during |",
        "|---|---|---|---|---|---|",
    ]
    with PluginProcess(workspace(), execution_timeout=120, first_chunk_timeout=120) as proc:
        rows.extend(measure(proc, case, poll, polls_before) for case in CASES)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polls", type=int, default=30, help="idle polls per case")
    args = parser.parse_args()
    print("\n".join(run(args.polls)))


if __name__ == "__main__":
    main()
