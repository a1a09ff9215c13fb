"""Runs one ``session.storage`` call and returns its result or exception text.

With ``"after_file": <path>`` the answer is streamed: ``ready`` first, then the storage call
is made only once that file exists (tests use it to call after the session has ended).
"""

import json
import os
import time
from collections.abc import Iterator, Mapping

from dify_plugin import Endpoint
from werkzeug import Request, Response


class StorageProbe(Endpoint):
    def _invoke(self, r: Request, values: Mapping, settings: Mapping) -> Response:
        spec = r.get_json()
        if spec.get("after_file"):
            return Response(self._later(spec), content_type="text/plain")
        return Response(json.dumps(self._call(spec)), content_type="application/json")

    def _later(self, spec: dict) -> Iterator[bytes]:
        yield b"ready\n"
        deadline = time.monotonic() + 30
        while not os.path.exists(spec["after_file"]) and time.monotonic() < deadline:
            time.sleep(0.02)
        yield json.dumps(self._call(spec)).encode()

    def _call(self, spec: dict) -> dict:
        storage, key = self.session.storage, spec["key"]
        try:
            if spec["op"] == "set":
                result = storage.set(key, spec["value"].encode())
            elif spec["op"] == "get":
                result = storage.get(key).decode()
            elif spec["op"] == "exist":
                result = storage.exist(key)
            else:
                result = storage.delete(key)
            return {"result": result}
        except Exception as exc:  # the probe reports what the SDK raised
            return {"exception": str(exc)}
