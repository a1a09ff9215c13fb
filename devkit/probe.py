"""Location of the test-only probe plugin (null endpoint + app/storage probes)."""

from pathlib import Path

PROBE_ROOT = Path(__file__).resolve().parent / "probe_plugin"
