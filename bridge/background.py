"""Work beside the request — a stream's pump, an overlapped storage write, a held self-call —
started one way.

The SDK monkey-patches the process with gevent when it is imported, so a ``threading.Thread``
is a greenlet already; but the thread machinery around that greenlet (its Event, Condition
and registry entry, and the switch ``start()`` waits on) made a start and join cost ~68 µs,
against ~26 µs for the same work spawned as a greenlet directly (dify_plugin 0.10.2's
patching, 2 cores; a streamed new conversation starts two: issue #14). Where threading is not
patched (a process that never imported the SDK) a daemon thread runs the work.

Either way the work starts at once, before :func:`start` returns to the caller, as a thread's
``start()`` lets it: an overlapped write is on its way before the caller goes on. ``target``
hands its outcome back itself (a queue, a field); whatever still escapes it is logged by type
alone — never a traceback from gevent's hub or ``threading``'s hook in the daemon's log.

Resident greenlets. On Python 3.12 a new greenlet maps a frame stack of its own and unmaps it
when it ends (an ``mmap`` and a ``munmap`` per greenlet, ~13 µs here against ~1 µs for a
switch into one that exists), so a greenlet that has finished its work waits for the next
instead of ending: :func:`start` hands the work to an idle one when there is one and spawns one
only when none is idle. At most :data:`KEEP_IDLE` wait; each piece of work runs in a fresh
``contextvars.Context``, as it would in a new greenlet, so nothing of one carries over to the
next.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable

import gevent
import gevent.event
import gevent.queue
from gevent import GreenletExit, monkey

from bridge.errors import describe_exception

logger = logging.getLogger(__name__)

KEEP_IDLE = 16  # resident greenlets kept waiting for work, at most


class Task:
    """Work started by :func:`start`."""

    def __init__(self, target: Callable[[], object], name: str) -> None:
        self._target, self._name = target, name
        self._done: gevent.event.Event | None = None
        self._thread: threading.Thread | None = None
        if monkey.is_module_patched("threading"):
            self._done = gevent.event.Event()
            _residents.hand(self)
            gevent.sleep(0)  # the hub runs it now, until it first waits
        else:
            self._thread = threading.Thread(target=self._run, name=name, daemon=True)
            self._thread.start()

    def _run(self) -> bool:
        """Do the work; True when it was killed (an ordinary end for a greenlet)."""
        try:
            self._target()
        except GreenletExit:
            return True
        except BaseException as exc:  # noqa: BLE001 - nothing is left to hand it to
            logger.warning("background task %s stopped: %s", self._name, describe_exception(exc))
        return False

    def _run_resident(self) -> bool:
        """:meth:`_run` on a resident greenlet, in a context of its own; then finished."""
        assert self._done is not None
        try:
            return contextvars.Context().run(self._run)
        finally:
            self._done.set()

    def join(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds; True when the work has finished."""
        if self._done is not None:
            return self._done.wait(timeout)
        assert self._thread is not None
        self._thread.join(timeout)
        return not self._thread.is_alive()


class _Residents:
    """Greenlets that run one task after another (see the module's docstring)."""

    def __init__(self, keep_idle: int) -> None:
        self.keep_idle = keep_idle
        self.idle = 0  # waiting for work and not yet handed any
        self.spawned = 0  # greenlets started, ever (the tests read it)
        self._work: gevent.queue.Queue[Task] = gevent.queue.Queue()

    def hand(self, task: Task) -> None:
        if self.idle:
            self.idle -= 1  # that one is taken: the task waits for no one else
            self._work.put(task)
        else:
            self.spawned += 1
            gevent.spawn(self._serve, task)

    def _serve(self, task: Task | None) -> None:
        while True:
            if task is None:
                try:
                    task = self._work.get()
                except GreenletExit:  # killed while waiting, before it took a task
                    self._killed_waiting()
                    return
            if task._run_resident():  # killed at work: it ends, as a spawned greenlet would
                return
            task = None
            if self.idle >= self.keep_idle:
                return
            self.idle += 1

    def _killed_waiting(self) -> None:
        # those waiting are the idle ones plus one per task handed and not yet taken
        if self.idle:
            self.idle -= 1
        elif not self._work.empty():  # every waiting one was taken: a new one runs its task
            self.spawned += 1
            gevent.spawn(self._serve, None)


_residents = _Residents(KEEP_IDLE)


def start(target: Callable[[], object], name: str) -> Task:
    """Run ``target()`` beside the caller, starting now (``name`` names a plain thread)."""
    return Task(target, name)
