"""Plugin entry point: the daemon runs ``python -m main`` in the plugin directory."""

from dify_plugin import DifyPluginEnv, Plugin

from bridge.transport.heap import freeze_startup_objects
from bridge.transport.sdk import install

install()  # SDK seams (unparseable requests → 400, one TypeAdapter): before Plugin() binds
plugin = Plugin(DifyPluginEnv(MAX_REQUEST_TIMEOUT=600))
freeze_startup_objects()  # built: full collections now walk only what requests create

if __name__ == "__main__":
    plugin.run()
