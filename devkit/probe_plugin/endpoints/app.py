"""Runs ``session.app.<kind>.invoke`` and streams each dict back as one JSON line.

With ``"storage": [{"op": "get" | "set", "key": …, "value": …}, …]`` it also makes those
``session.storage`` calls, one after another, once the first event is on its way — when a new
conversation's id is known. The benchmarks' null plugin making a route's storage round trips
and nothing else (``devkit/bench.py``).
"""

import json
from collections.abc import Iterator, Mapping

from dify_plugin import Endpoint
from werkzeug import Request, Response


class AppProbe(Endpoint):
    def _invoke(self, r: Request, values: Mapping, settings: Mapping) -> Response:
        spec = r.get_json()
        app = self.session.app
        if spec.get("kind") == "fetch_app":
            return Response(
                json.dumps(app.fetch_app(spec["app_id"])), content_type="application/json"
            )
        invocation = {"chat": app.chat, "completion": app.completion, "workflow": app.workflow}[
            spec["kind"]
        ]
        kwargs = {
            k: spec[k]
            for k in ("app_id", "inputs", "response_mode", "query", "conversation_id")
            if k in spec
        }

        storage_calls = spec.get("storage", [])

        def lines() -> Iterator[bytes]:
            try:
                result = invocation.invoke(**kwargs)
                for index, item in enumerate([result] if isinstance(result, dict) else result):
                    yield json.dumps({"event": item}).encode() + b"\n"
                    if index == 0:
                        for call in storage_calls:
                            self._storage_call(call)
            except Exception as exc:  # the probe reports what the SDK raised
                yield json.dumps({"exception": str(exc)}).encode() + b"\n"

        return Response(lines(), content_type="application/x-ndjson")

    def _storage_call(self, call: Mapping) -> None:
        storage = self.session.storage
        if call["op"] == "get":
            storage.get(call["key"])
        elif call["op"] == "set":
            storage.set(call["key"], call["value"].encode())
        else:
            raise ValueError(f"unknown storage op {call['op']!r}")
