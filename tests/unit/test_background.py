"""bridge.background: work beside the request, started one way (issue #14).

The suite runs under the SDK's gevent patching (conftest imports dify_plugin first), as the
plugin does; the plain-thread branch is checked in a child process that never imports it.
"""

import contextvars
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import gevent
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


# -- resident greenlets: a finished one takes the next task instead of a new spawn ------------


def _greenlet_of_a_task() -> object:
    seen = []
    assert background.start(lambda: seen.append(gevent.getcurrent()), "test").join(5) is True
    return seen[0]


def test_a_finished_greenlet_runs_the_next_task_instead_of_a_new_one():
    ran_one = _greenlet_of_a_task()
    spawned = background._residents.spawned
    ran_next = _greenlet_of_a_task()
    assert background._residents.spawned == spawned  # an idle one took it: no spawn
    assert not ran_one.dead and not ran_next.dead  # type: ignore[attr-defined]


def test_a_busy_greenlet_holds_up_no_one():
    release = threading.Event()
    ran = []
    busy = background.start(release.wait, "test")
    other = background.start(lambda: ran.append("ran"), "test")
    assert ran == ["ran"]  # started before start() returned, beside the busy one
    assert other.join(5) is True and busy.join(0.01) is False
    release.set()
    assert busy.join(5) is True


def test_at_most_keep_idle_greenlets_wait():
    release = threading.Event()
    tasks = [background.start(release.wait, "test") for _ in range(background.KEEP_IDLE + 8)]
    release.set()
    assert all(task.join(5) for task in tasks)
    assert background._residents.idle == background.KEEP_IDLE


CURRENT = contextvars.ContextVar("current", default="unset")


def test_each_task_runs_in_a_context_of_its_own():
    seen = []
    background.start(lambda: CURRENT.set("first task"), "test").join(5)
    background.start(lambda: seen.append(CURRENT.get()), "test").join(5)
    assert seen == ["unset"]


def test_a_greenlet_killed_while_idle_is_replaced():
    idle = _greenlet_of_a_task()
    waiting = background._residents.idle
    idle.kill()  # type: ignore[attr-defined]
    assert background._residents.idle == waiting - 1
    ran = []
    task = background.start(lambda: ran.append(gevent.getcurrent()), "test")
    assert task.join(5) is True and ran and ran[0] is not idle


def test_a_task_killed_at_work_is_finished_and_its_greenlet_ends():
    release = threading.Event()
    seen = []
    task = background.start(lambda: (seen.append(gevent.getcurrent()), release.wait()), "test")
    seen[0].kill()
    assert task.join(5) is True
    assert seen[0].dead
