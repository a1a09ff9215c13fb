"""What an HTTP caller receives for an endpoint request, recorded by the harness."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass
class EndpointResponse:
    """Status, headers and body chunks (each with the monotonic time it arrived)."""

    status: int
    headers: dict[str, str]
    chunks: list[bytes] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    @property
    def text(self) -> str:
        return self.body.decode()

    def json(self) -> object:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None


def collect(status: int, headers: dict[str, str], chunks: Iterable[bytes]) -> EndpointResponse:
    """Read ``chunks`` to the end, noting when each arrived."""
    response = EndpointResponse(status, headers)
    for chunk in chunks:
        response.chunks.append(chunk)
        response.arrivals.append(time.monotonic())
    return response
