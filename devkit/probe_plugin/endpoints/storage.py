"""Runs one ``session.storage`` call and returns its result or exception text."""

import json
from collections.abc import Mapping

from dify_plugin import Endpoint
from werkzeug import Request, Response


class StorageProbe(Endpoint):
    def _invoke(self, r: Request, values: Mapping, settings: Mapping) -> Response:
        spec = r.get_json()
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
            body = {"result": result}
        except Exception as exc:  # the probe reports what the SDK raised
            body = {"exception": str(exc)}
        return Response(json.dumps(body), content_type="application/json")
