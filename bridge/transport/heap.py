"""The start-up's objects kept out of the garbage collector's full passes (issue #14).

Once dify_plugin, pydantic, gevent, werkzeug and the bridge are loaded, the collector tracks
~87 000 objects, and a full collection walks all of them: 73–103 ms on the benchmark's host,
during which every request and stream of the process stands still (one gevent loop). Python
runs one whenever the objects that survived into the oldest generation since the last reach
a quarter of those it holds — behind the emulator once every 1 000–5 000 requests.

Nearly all those objects (modules, classes, functions, the SDK's models, compiled routes)
live as long as the process. :func:`freeze_startup_objects`, called once the plugin is
built and before it serves, collects the start-up's garbage and moves the rest into the
permanent generation (:func:`gc.freeze`): later collections walk only what requests have
created (a full one after 100 requests took 0.7 ms; docs/performance.md). Reference counting
frees frozen objects as before; only a cycle among them would stay until the process ends.
"""

from __future__ import annotations

import gc


def freeze_startup_objects() -> int:
    """Collect once, then freeze what is left; returns how many objects were frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
