"""bridge.transport.sdk.routing: a kept match is what the SDK's dispatch finds for the request.

Every case asks the SDK's own ``PluginRegistration.dispatch_endpoint_request`` and the seam
about the same request, over the bridge's own 22 routes (``endpoints/*.yaml``, built into a
``Map`` as the SDK builds it): the same endpoint and values, or the same exception with the
same message — on the first request of a method and path, and again when its match is kept.
"""

import inspect
from pathlib import Path
from typing import Any

import pytest
import yaml
from dify_plugin.core.plugin_registration import PluginRegistration
from dify_plugin.core.utils.http_parser import deserialize_request
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.routing import Map, Rule

from bridge.transport import sdk
from bridge.transport.sdk import routing
from bridge.transport.sdk.verify import source_digest
from devkit.wire import daemon_request_bytes

ROOT = Path(__file__).resolve().parents[2]
ROUTES = sorted(
    (spec["path"], spec["method"])
    for spec in (yaml.safe_load(p.read_text()) for p in (ROOT / "endpoints").glob("*.yaml"))
)
SDK_DISPATCH = routing._replaced.get("dispatch", PluginRegistration.dispatch_endpoint_request)


@pytest.fixture(autouse=True)
def _seams() -> None:
    sdk.install()


class _Registration:
    """What ``dispatch_endpoint_request`` reads of a ``PluginRegistration``: its ``Map``."""

    def __init__(self, **options: Any) -> None:
        self.endpoints = Map(**options)
        for path, method in ROUTES:  # as PluginRegistration._resolve_endpoints adds them
            self.endpoints.add(Rule(path, methods=[method], endpoint=f"{method} {path}"))


def _outcome(dispatch: Any, registration: _Registration, raw: bytes) -> tuple:
    try:
        endpoint, values = dispatch(registration, deserialize_request(raw))
    except Exception as exc:  # compared with what the SDK raises
        return ("raised", type(exc), str(exc))
    return ("matched", endpoint, dict(values))


def _agree(registration: _Registration, raw: bytes) -> tuple:
    expected = _outcome(SDK_DISPATCH, _Registration(), raw)
    first = _outcome(routing.remembered_dispatch, registration, raw)
    kept = _outcome(routing.remembered_dispatch, registration, raw)
    assert first == expected == kept, raw
    return expected


def test_the_seam_is_installed_over_the_dispatch_it_was_verified_on():
    assert sdk.install()["routes_by_method_and_path"]
    assert PluginRegistration.dispatch_endpoint_request is routing.remembered_dispatch
    assert source_digest(routing._replaced["dispatch"]) == routing.DISPATCH_SOURCE
    assert routing.install_remembered_routes("0.11.0") is False
    assert len(ROUTES) == 22


def test_the_sdk_builds_its_map_as_the_tests_do():
    """The premise: a plain ``Map()`` and one ``Rule(path, methods=[method])`` per endpoint."""
    source = inspect.getsource(PluginRegistration)
    assert "self.endpoints = Map()" in source
    assert "endpoint.path, methods=[endpoint.method], endpoint=endpoint_cls" in source


@pytest.mark.parametrize(("path", "method"), ROUTES)
def test_every_route_matches_as_the_sdk_matches_it(path, method):
    registration = _Registration()
    concrete = path.replace("<path:rest>", "a/b%20c").replace("<rest>", "x")
    assert _agree(registration, daemon_request_bytes(method, concrete))[0] == "matched"
    for other in ("GET", "POST", "PATCH", "HEAD"):  # 405s and HEAD's implicit GET
        _agree(registration, daemon_request_bytes(other, concrete))


@pytest.mark.parametrize(
    "raw",
    [
        daemon_request_bytes("GET", "/v1/models/"),  # strict slashes
        daemon_request_bytes("GET", "//v1//models"),  # merged slashes: a redirect
        daemon_request_bytes("GET", "/v1/models?x=1&y=2"),
        daemon_request_bytes("POST", "/v1/models", body=b"{}"),
        daemon_request_bytes("GET", "/caf%C3%A9/%E2%9C%93"),
        daemon_request_bytes("GET", "/", host="127.0.0.1:5002"),
        daemon_request_bytes("GET", "/v1/models", headers={"Connection": "Upgrade",
                                                           "Upgrade": "websocket"}),
        daemon_request_bytes("GET", "/webhook", headers={"Upgrade": "h2c"}),
    ],
)  # fmt: skip
def test_odd_requests_fare_as_with_the_sdk(raw):
    _agree(_Registration(), raw)


def test_a_websocket_upgrade_is_never_answered_from_a_kept_match():
    registration = _Registration()
    plain = daemon_request_bytes("GET", "/v1/models")
    upgrade = daemon_request_bytes(
        "GET", "/v1/models", headers={"Connection": "Upgrade", "Upgrade": "websocket"}
    )
    _agree(registration, plain)
    assert _agree(registration, upgrade)[0] == "raised"  # the rule is not a websocket rule


def test_kept_values_are_copies():
    registration = _Registration()
    raw = daemon_request_bytes("GET", "/some/where")
    for _ in range(3):  # the SDK's match, then the kept one twice
        _, values = routing.remembered_dispatch(registration, deserialize_request(raw))
        assert values == {"rest": "some/where"}
        values["rest"] = "changed"


def test_at_most_so_many_matches_are_kept_the_least_recent_forgotten_first():
    registration = _Registration()
    models = daemon_request_bytes("GET", "/v1/models")
    _agree(registration, models)
    for i in range(routing.REMEMBERED + 40):
        _agree(registration, daemon_request_bytes("GET", f"/path/{i}"))
        if i % 50 == 0:
            _agree(registration, models)  # used again: kept
    kept = getattr(registration.endpoints, routing.MATCHES)
    assert len(kept) == routing.REMEMBERED
    assert ("GET", "/v1/models") in kept
    assert ("GET", "/path/0") not in kept


def test_a_map_with_host_matching_is_matched_by_the_sdk_every_time():
    registration = _Registration(host_matching=True)
    raw = daemon_request_bytes("GET", "/v1/models")
    _outcome(routing.remembered_dispatch, registration, raw)
    assert not hasattr(registration.endpoints, routing.MATCHES)


_SEGMENTS = st.sampled_from(
    ["v1", "models", "chat-messages", "chat", "completions", "webhook", "extension",
     "parameters", "responses", "continue", "", "x", "%20", "caf%C3%A9", "..", "."]
)  # fmt: skip
_METHODS = st.sampled_from(["GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "HEAD"])


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.lists(st.tuples(_METHODS, st.lists(_SEGMENTS, max_size=4)), min_size=1, max_size=6))
def test_generated_requests_fare_as_with_the_sdk(requests):
    registration = _Registration()
    for method, segments in requests:
        _agree(registration, daemon_request_bytes(method, "/" + "/".join(segments)))
