"""bridge.background: work beside the request, started one way (issue #14).

The suite runs under the SDK's gevent patching (conftest imports dify_plugin first), as the
plugin does; the plain-thread branch is checked in a child process that never imports it.
"""

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from gevent import monkey

from bridge import background

ROOT = Path(__file__).resolve().parents[2]


def test_the_suite_runs_patched_as_the_plugin_does():
    assert monkey.is_module_patched("threading")


def test_work_starts_before_start_returns():
    ran = []
    task = background.start(lambda: ran.append("ran"), "test")
    assert ran == ["ran"]
    assert task.join(5) is True


def test_join_tells_whether_the_work_has_finished():
    release = threading.Event()
    task = background.start(release.wait, "test")
    assert task.join(0.01) is False  # still waiting: the event is set only below
    release.set()
    assert task.join(5) is True


class Escaped(Exception):
    """Carries text that must never reach a log line."""


def test_what_escapes_is_logged_by_type_alone(caplog, capfd):
    def broken():
        raise Escaped("secret-token-123")

    with caplog.at_level("WARNING", logger="bridge.background"):
        assert background.start(broken, "test").join(5) is True
    assert [r.getMessage() for r in caplog.records] == ["background task test stopped: Escaped"]
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err and "secret-token-123" not in captured.err


CHILD = textwrap.dedent(
    """
    import threading
    from gevent import monkey
    from bridge import background
    assert not monkey.is_module_patched("threading")
    ran = []
    release = threading.Event()
    task = background.start(lambda: (ran.append(threading.current_thread().name), release.wait()), "plain-worker")
    assert task.join(0.01) is False
    release.set()
    assert task.join(5) is True
    assert ran == ["plain-worker"], ran
    def broken():
        raise ValueError("secret-token-123")
    assert background.start(broken, "broken").join(5) is True
    print("ok")
    """
)


def test_without_the_sdk_a_daemon_thread_runs_the_work():
    run = subprocess.run(
        [sys.executable, "-c", CHILD],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout == "ok\n"
    assert "Traceback" not in run.stderr and "secret-token-123" not in run.stderr
