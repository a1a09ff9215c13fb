"""Two-way benchmark (not a test): delivery → ack, and the app's last event → the reply call.

``python -m devkit.bench_two_way [--runs 40] [--platform slack]`` runs the real plugin behind
the daemon emulator (with its ``SERVER_PORT`` listener) and the fake platform APIs, sends signed
deliveries one after another to an app that answers at once, and prints p50/p95/max of:

- **ack**: from writing the delivery to the plugin until the ack's body is complete (verify,
  dedupe record, self-call through the daemon listener, the continuation's ``started``);
- **reply**: from the workspace sending the app's last event until the fake platform API
  receives the reply call (aggregation, mapping done, the channel's HTTP call).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

from devkit import deliver
from devkit.daemon import PluginProcess
from devkit.fakes import FakePlatforms
from devkit.wire import daemon_request_bytes
from devkit.workspace import App, Script, Workspace

SECRETS = {"slack": "slack-signing-secret", "telegram": "telegram-secret-token",
           "github": "github-webhook-secret"}  # fmt: skip
TOKENS = {"slack": "xoxb-bench", "telegram": "123456:bench-telegram-bot-token-000",
          "github": "ghp_bench"}  # fmt: skip


class TimedWorkspace(Workspace):
    """Notes when each run sent its last event."""

    def __init__(self, apps: list[App]) -> None:
        super().__init__(apps)
        self.last_event_at: list[float] = []

    def run_app(self, request: Any, *, user_id: str = "") -> Any:
        yield from super().run_app(request, user_id=user_id)
        self.last_event_at.append(time.monotonic())


class TimedFakes(FakePlatforms):
    """Notes when each platform call arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[float] = []

    def _handle(self, handler: Any) -> None:
        self.arrivals.append(time.monotonic())
        super()._handle(handler)


def percentiles(values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return f"p50 {statistics.median(ms):6.1f} ms  p95 {p95:6.1f} ms  max {ms[-1]:6.1f} ms"


def run(platform: str, runs: int) -> dict[str, list[float]]:
    workspace = TimedWorkspace([App("fast", "chat", "Fast", script=Script(answer="ok {query}"))])
    acks, replies = [], []
    with TimedFakes() as fakes:
        env = fakes.environment()
        with PluginProcess(workspace, env=env) as process:
            settings = {"api_key": "bench-key", "app": {"app_id": "fast"},
                        "webhook_verification": platform, "webhook_secret": SECRETS[platform],
                        "webhook_reply": platform, "reply_token": TOKENS[platform]}  # fmt: skip
            for index in range(runs + 3):  # three warm-up rounds
                now = time.time()
                document, extra = deliver.payload(platform, f"bench {index}", now)
                body = json.dumps(document).encode()
                headers = {"Content-Type": "application/json", **extra,
                           **deliver.sign(platform, body, SECRETS[platform], now)}  # fmt: skip
                raw = daemon_request_bytes(
                    "POST", "/webhook", headers=headers, body=body, hook_id="bench00000000001"
                )
                started = time.monotonic()
                ack = process.request(raw, settings, endpoint_id="ep-bench")
                acked = time.monotonic()
                if ack.status >= 300:
                    raise SystemExit(f"delivery refused: {ack.status} {ack.text}")
                calls = fakes.wait_for(platform, index + 1, timeout=30)
                if len(calls) < index + 1:
                    raise SystemExit("no reply reached the fake platform")
                deadline = time.monotonic() + 5
                while len(workspace.last_event_at) <= index and time.monotonic() < deadline:
                    time.sleep(0.001)
                if index >= 3:
                    acks.append(acked - started)
                    replies.append(fakes.arrivals[index] - workspace.last_event_at[index])
    return {"ack": acks, "reply": replies}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--platform", choices=sorted(SECRETS), default="slack")
    args = parser.parse_args(argv)
    results = run(args.platform, args.runs)
    print(f"two-way {args.platform}, {args.runs} deliveries, app answers at once")
    print(f"  delivery → ack          {percentiles(results['ack'])}")
    print(f"  last app event → reply  {percentiles(results['reply'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
