"""Fixtures for the three test levels.

- pure core: import ``bridge`` and call it;
- in-process: :func:`inprocess` — the SDK's own parser/router/executor/Session in this
  process, backwards calls answered by an emulated workspace;
- process: :func:`plugin_process` — ``python -m main`` as a subprocess over stdio behind
  the daemon emulator; :func:`runner_url` — the local runner's HTTP server on loopback.

``dify_plugin`` applies gevent's monkey patching on import; it is imported first so the
whole test process is patched consistently, as the plugin process is.
"""

from collections.abc import Iterator

import dify_plugin  # noqa: F401  (gevent patching first)
import pytest

from bridge.app.gateway import MODES, PARAMETERS
from bridge.storage import conversations, idempotency
from devkit.daemon import PluginProcess
from devkit.inprocess import InProcessPlugin
from devkit.runner import DEMO_CONFIG, Bridge, running
from devkit.workspace import App, Workspace

CHAT_APP = "app-chat-0001"
SETTINGS = {"api_key": "test-key", "app": {"app_id": CHAT_APP, "inputs": {}, "files": []}}


def make_workspace() -> Workspace:
    """One app of each mode, ids ``app-<mode>-0001``."""
    apps = [
        App(CHAT_APP, "chat", "Chat"),
        App("app-agent-0001", "agent-chat", "Agent"),
        App("app-flow-0001", "advanced-chat", "Chatflow"),
        App("app-completion-0001", "completion", "Completion"),
        App("app-workflow-0001", "workflow", "Workflow"),
    ]
    return Workspace(apps)


@pytest.fixture
def workspace() -> Workspace:
    return make_workspace()


@pytest.fixture(autouse=True)
def _fresh_process_memory() -> None:
    """Mode memory, the parameters cache and the memory of immutable records (owners,
    answered deliveries) live for a plugin process; reset per test (fresh storage)."""
    MODES.clear()
    PARAMETERS.entries.clear()
    conversations.KNOWN.clear()
    idempotency.KNOWN.clear()


@pytest.fixture(scope="session")
def _inprocess_plugin() -> InProcessPlugin:
    return InProcessPlugin(make_workspace())


@pytest.fixture
def inprocess(_inprocess_plugin: InProcessPlugin, workspace: Workspace) -> InProcessPlugin:
    """The in-process plugin, answering from this test's fresh workspace."""
    _inprocess_plugin.workspace = workspace
    return _inprocess_plugin


@pytest.fixture(scope="session")
def _plugin_process() -> Iterator[PluginProcess]:
    with PluginProcess(make_workspace()) as process:
        yield process


@pytest.fixture
def plugin_process(_plugin_process: PluginProcess, workspace: Workspace) -> PluginProcess:
    """The plugin subprocess, answering from this test's fresh workspace."""
    assert _plugin_process.running, "plugin process died in an earlier test"
    _plugin_process.workspace = workspace
    return _plugin_process


@pytest.fixture(scope="session")
def runner() -> Iterator[tuple[str, Bridge]]:
    """The local runner on an ephemeral loopback port, with the demo workspace."""
    bridge = Bridge(DEMO_CONFIG)
    with running(bridge) as base:
        yield base, bridge
