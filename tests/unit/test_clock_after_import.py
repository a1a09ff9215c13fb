"""No test may depend on wall-clock distance from import (issue 10 item 9).

The suite is run again in a subprocess whose clock jumps 120 s ahead once collection is over
— what a loaded machine does to a test that takes "now" at import. Every test must still
pass: times a test needs are read when it runs.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
JUMP = 120.0

PLUGIN = textwrap.dedent(
    f"""
    import datetime as _dt
    import time

    JUMP = {JUMP}


    def pytest_collection_finish(session):
        real_time = time.time
        time.time = lambda: real_time() + JUMP

        class Later(_dt.datetime):
            @classmethod
            def now(cls, tz=None):
                return super().now(tz) + _dt.timedelta(seconds=JUMP)

        import standardwebhooks.webhooks

        standardwebhooks.webhooks.datetime = Later
    """
)

# the modules whose tests sign, stamp or expire things by the clock
MODULES = ["tests/unit/test_verifiers.py", "tests/unit/test_records.py"]


def test_tests_pass_when_the_clock_moves_on_after_collection(tmp_path):
    (tmp_path / "clock_jump.py").write_text(PLUGIN)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "clock_jump", "-p", "no:cacheprovider",
         *MODULES],
        check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:]
