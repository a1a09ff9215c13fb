"""Storage writes that overlap the app's own latency (issue #14).

A new conversation's owner record can be written as soon as the app's first event names
the conversation, while the app is still generating. :class:`Overlapped` runs that call
beside the request and hands its outcome back at :meth:`Overlapped.result`, which the
request calls before it ends — so a failed write still fails the request, and no storage
call outlives the request's session (the daemon answers no backwards call after it).
"""

from __future__ import annotations

from collections.abc import Callable

from bridge import background

JOIN_TIMEOUT = 30.0  # a storage call answers in milliseconds; the SDK gives up far later


class Overlapped:
    def __init__(self, call: Callable[[], object]) -> None:
        self._call = call
        self._error: BaseException | None = None
        self._task = background.start(self._run, "app-bridge-storage")

    def _run(self) -> None:
        try:
            self._call()
        except BaseException as exc:  # noqa: BLE001 - handed to result()
            self._error = exc

    def result(self) -> None:
        """Wait for the call; raise what it raised (TimeoutError if it never returned)."""
        if not self._task.join(JOIN_TIMEOUT):
            raise TimeoutError("storage call did not return")
        if self._error is not None:
            raise self._error
