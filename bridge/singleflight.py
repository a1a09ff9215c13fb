"""Single-flight with a short memory: identical concurrent calls share one execution.

Dify retries an API-extension call up to three more times when it times out or gets a 5xx
(protocol.md §3.1). Keyed by the request, a retry that arrives while the first call still
runs waits for it; one that arrives shortly after gets the remembered result. Failures are
shared with the callers already waiting but not remembered. In-process only: enough for
Dify's local plugin runtime (one process); serverless instances do not share it.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable


class _Flight:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: object = None
        self.error: BaseException | None = None


class SingleFlight:
    def __init__(self, ttl: float = 300.0, capacity: int = 1024) -> None:
        self._ttl = ttl
        self._capacity = capacity
        self._lock = threading.Lock()
        self._flights: dict[str, _Flight] = {}
        self._results: OrderedDict[str, tuple[float, object]] = OrderedDict()

    def run[T](self, key: str, fn: Callable[[], T]) -> T:
        with self._lock:
            remembered = self._results.get(key)
            if remembered is not None and remembered[0] > time.monotonic():
                return remembered[1]  # type: ignore[return-value]
            flight = self._flights.get(key)
            leader = flight is None
            if leader:
                flight = self._flights[key] = _Flight()
        assert flight is not None
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.result  # type: ignore[return-value]
        try:
            flight.result = fn()
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                self._flights.pop(key, None)
                if flight.error is None:
                    self._remember(key, flight.result)
            flight.done.set()
        return flight.result

    def _remember(self, key: str, result: object) -> None:
        if self._ttl <= 0:
            return
        self._results[key] = (time.monotonic() + self._ttl, result)
        self._results.move_to_end(key)
        while len(self._results) > self._capacity:
            self._results.popitem(last=False)
