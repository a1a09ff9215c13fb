"""The route catalogue (diagnostics page, runner banner) equals the declared endpoints."""

from pathlib import Path

import yaml

from bridge.transport.routes import ROUTES

ROOT = Path(__file__).resolve().parents[2]


def declared_endpoints():
    group = yaml.safe_load((ROOT / "group" / "app_bridge.yaml").read_text())
    for path in group["endpoints"]:
        yield yaml.safe_load((ROOT / path).read_text())


def test_catalogue_matches_visible_endpoint_yamls():
    visible = {(e["method"], e["path"]) for e in declared_endpoints() if not e.get("hidden")}
    assert visible == {(r.method, r.path) for r in ROUTES}


def test_every_endpoint_source_is_thin():
    """Endpoint modules only adapt HTTP to the core: small, no business logic."""
    for endpoint in declared_endpoints():
        source = (ROOT / endpoint["extra"]["python"]["source"]).read_text()
        assert len(source.splitlines()) <= 60, endpoint["extra"]["python"]["source"]
