"""Developer tools: harness, local runner, packager. Never imported by the plugin."""
