"""CPU-bound steps off the event loop, so one request cannot stall every other.

The plugin process runs every request as a greenlet on one gevent loop (the SDK patches
threads and sockets), so pure-Python work — a JMESPath mapping over a large document, the
bounds check of a large body — holds up every endpoint of the process until it ends.
Yielding from inside that work (``gevent.sleep(0)``, ``gevent.idle()``) was measured not to
be enough: the SDK reads stdin through gevent's thread pool, and its results waited hundreds
of milliseconds behind a busy loop (docs/limits.md, issue 10 note).

:func:`offload` runs such a step in a small pool of native threads instead: the loop thread
keeps serving I/O and other requests, and the interpreter's GIL switching (every 5 ms) gives
it its turns. Exceptions are carried back and re-raised in the calling greenlet (never
printed by the pool). Without gevent (plain tests, tools) the step simply runs inline.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from gevent import monkey
from gevent.threadpool import ThreadPool

POOL_SIZE = 2  # native threads for CPU steps (the GIL lets one run at a time anyway)

_pool: ThreadPool | None = None
_lock = threading.Lock()


def offload[T](step: Callable[..., T], *args: Any) -> T:
    """``step(*args)``, in a native thread when the event loop is gevent's."""
    if not monkey.is_module_patched("threading"):
        return step(*args)
    ok, value = _thread_pool().apply(_capture, (step, args))
    if ok:
        return value
    raise value


def _capture(step: Callable[..., Any], args: tuple) -> tuple[bool, Any]:
    try:
        return True, step(*args)
    except Exception as exc:  # noqa: BLE001 - re-raised in the calling greenlet
        return False, exc


def _thread_pool() -> ThreadPool:
    global _pool  # noqa: PLW0603 - one pool per process, made on first use
    with _lock:
        if _pool is None:
            _pool = ThreadPool(POOL_SIZE)
        return _pool
