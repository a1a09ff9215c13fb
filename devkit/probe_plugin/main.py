"""Plugin entry point: the daemon runs ``python -m main`` in the plugin directory.

The probe runs the bare SDK. Only with ``APP_BRIDGE_PROBE_SEAMS=1`` in its environment (set by
``./dev bench`` for its second null plugin) does it install App Bridge's SDK seams
(``bridge.transport.sdk.install``), so that the bridge can also be compared with a null plugin
running the very same patched SDK.
"""

import os
import sys
from pathlib import Path

from dify_plugin import DifyPluginEnv, Plugin

if os.environ.get("APP_BRIDGE_PROBE_SEAMS") == "1":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root
    from bridge.transport.sdk import install

    install()

plugin = Plugin(DifyPluginEnv(MAX_REQUEST_TIMEOUT=600))

if __name__ == "__main__":
    plugin.run()
