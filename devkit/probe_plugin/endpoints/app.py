"""Runs ``session.app.<kind>.invoke`` and streams each dict back as one JSON line."""

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

        def lines() -> Iterator[bytes]:
            try:
                result = invocation.invoke(**kwargs)
                for item in [result] if isinstance(result, dict) else result:
                    yield json.dumps({"event": item}).encode() + b"\n"
            except Exception as exc:  # the probe reports what the SDK raised
                yield json.dumps({"exception": str(exc)}).encode() + b"\n"

        return Response(lines(), content_type="application/x-ndjson")
