"""Stdin without the threadpool (issue 14).

``StdioRequestReader._read_async`` reads stdin with ``gevent.os.tp_read``: every read is handed
to a native thread of gevent's threadpool and its result handed back to the hub — ~80 µs of CPU
per read, and a storage round trip brings two or three reads. Where stdin is the read end of a
pipe of its own (as the daemon starts plugins; not shared with stdout/stderr),
:func:`cooperative_read` makes it non-blocking and reads it as ``gevent.os.nb_read`` does (the
hub's I/O watcher wakes the reader, other greenlets run meanwhile), with one watcher kept for
the descriptor instead of one built and closed per wait; anything else, and an empty read (end
of file), goes through ``tp_read`` as before.
"""

from __future__ import annotations

import os
import stat
import sys
from typing import Any

import gevent
from gevent import os as gevent_os

from bridge.transport.sdk.verify import (
    source_of,
    verified_modules,
)

STDIO_READER_MODULE = "dify_plugin.core.server.stdio.request_reader"
STDIO_READ_CALL = "return tp_read(sys.stdin.fileno(), 65536)"
READ_SIZE = 65536
_pipes: dict[int, bool] = {}


def _readable_pipe(fd: int) -> bool:
    """Whether ``fd`` is the read end of a pipe of its own (not shared with stdout or
    stderr), now in non-blocking mode: then the hub can wait for it like for a socket."""
    known = _pipes.get(fd)
    if known is None:
        known = False
        try:
            info = os.fstat(fd)
            others = {(o.st_dev, o.st_ino) for o in map(_fstat_or_none, (1, 2)) if o}
            if stat.S_ISFIFO(info.st_mode) and (info.st_dev, info.st_ino) not in others:
                gevent_os.make_nonblocking(fd)
                known = True
        except (OSError, ValueError):
            known = False
        _pipes[fd] = known
    return known


def _fstat_or_none(fd: int) -> os.stat_result | None:
    try:
        return os.fstat(fd)
    except OSError:
        return None


def cooperative_read(self: Any) -> bytes:
    """``StdioRequestReader._read_async``: a pipe is read when the hub says it is readable
    (no threadpool hand-off per read); anything else, and end of file, as the SDK reads."""
    fd = sys.stdin.fileno()
    if _readable_pipe(fd):
        data = _read_when_readable(fd)
        if data:
            return data
    return gevent_os.tp_read(fd, READ_SIZE)


_watchers: dict[int, Any] = {}  # fd -> the hub's read watcher for it, kept between reads


def _read_when_readable(fd: int) -> bytes:
    """``gevent.os.nb_read(fd, READ_SIZE)`` with one read watcher per descriptor, kept: its
    own builds a watcher for each wait and closes it after (an ``epoll_ctl`` and an ``fcntl``
    per wait; docs/sdk-stdin.md). Another greenlet reading the same descriptor at once gets
    ``nb_read`` itself."""
    while True:
        try:
            return os.read(fd, READ_SIZE)
        except BlockingIOError:
            pass
        hub = gevent.get_hub()
        watcher = _watchers.get(fd)
        if watcher is None or watcher.loop is not hub.loop:
            watcher = _watchers[fd] = hub.loop.io(fd, 1)
        if watcher.callback is not None:  # waited on already: not ours to share
            return gevent_os.nb_read(fd, READ_SIZE)
        hub.wait(watcher)


def install_stdin_reader(version: str | None = None) -> bool:
    modules = verified_modules(version, STDIO_READER_MODULE)
    if modules is None:
        return False
    reader = getattr(modules[0], "StdioRequestReader", None)
    read = getattr(reader, "_read_async", None)
    if read is cooperative_read:
        return True
    if STDIO_READ_CALL not in source_of(read):
        return False
    reader._read_async = cooperative_read  # type: ignore[union-attr]
    return True
