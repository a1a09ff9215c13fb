"""The plugin process freezes its start-up's objects before it serves (bridge.transport.heap).

Run in a subprocess as the daemon starts the plugin (``main`` imported in the plugin's
directory), so that this test process's collector is left as it is.
"""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# on stderr: building the Plugin writes its manifest and logs to stdout, as for the daemon
REPORT = """
import gc, json, sys
import main
print(json.dumps({"frozen": gc.get_freeze_count(), "walked": len(gc.get_objects())}),
      file=sys.stderr)
"""


def test_main_freezes_the_startup_objects_out_of_full_collections():
    done = subprocess.run(
        [sys.executable, "-c", REPORT], cwd=ROOT, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    report = json.loads(done.stderr.strip().splitlines()[-1])
    # the SDK, pydantic, gevent and the bridge: tens of thousands of objects, all frozen, and a
    # full collection walks a small remainder (without the freeze it walks them all)
    assert report["frozen"] > 20_000
    assert report["walked"] * 20 < report["frozen"]


def test_freeze_collects_first_and_counts_what_it_froze():
    script = """
import gc, json, weakref
from bridge.transport.heap import freeze_startup_objects
class Cycle:
    pass
gc.disable()  # nothing collects before the freeze does
a = Cycle(); a.me = a; garbage = weakref.ref(a); del a  # start-up garbage
kept = [Cycle() for _ in range(1000)]  # start-up objects that live on
frozen = freeze_startup_objects()
print(json.dumps({"frozen": frozen, "count": gc.get_freeze_count(),
                  "garbage_freed": garbage() is None,
                  "kept_walked": sum(isinstance(o, Cycle) for o in gc.get_objects())}))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
        check=True,
    )  # fmt: skip
    report = json.loads(done.stdout)
    assert report["frozen"] == report["count"] > 1000
    assert report["garbage_freed"]  # collected, not frozen for the process's life
    assert report["kept_walked"] == 0  # frozen: no collection walks them again
