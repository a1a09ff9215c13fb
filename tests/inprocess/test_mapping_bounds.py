"""Webhook mappings are bounded and never hold the event loop (issue 10 item 5).

The stall itself is measured by ``python -m devkit.stall`` (a benchmark, numbers in the
issue note); these tests pin the mechanisms without timing anything: the document-size bound,
the step/time budget, and that other greenlets run while a mapping is being evaluated.
"""

import json

import gevent
import pytest
from conftest import SETTINGS

from bridge.config.settings import parse_settings
from bridge.protocols.mapping import MAX_MAPPED_BODY, MAX_STEPS, map_request
from bridge.storage import idempotency

AUTH = {"Authorization": "Bearer test-key", "Content-Type": "application/json"}
MAP_ALL = "join(',', map(&to_string(@), body.items))"


@pytest.fixture(autouse=True)
def _fresh_flights():
    idempotency.FLIGHTS.__init__(ttl=0)


def items_body(size: int) -> bytes:
    """``{"items": [...]}`` of about ``size`` bytes (never more)."""
    item = {"id": 100000, "name": "item-000000", "tags": ["a", "b"], "price": 1.5}
    count = size // (len(json.dumps(item)) + 2) - 1
    items = [{**item, "id": i, "name": f"item-{i:06d}"} for i in range(count)]
    return json.dumps({"items": items}).encode()


def deliver(inprocess, body, **settings):
    return inprocess.request(
        "POST", "/webhook", settings={**SETTINGS, **settings}, headers=AUTH, body=body
    )


@pytest.mark.parametrize("setting", ["webhook_query", "webhook_user", "webhook_inputs"])
def test_a_body_over_the_mapping_bound_is_413_naming_the_setting(inprocess, workspace, setting):
    expression = json.dumps({"x": MAP_ALL}) if setting == "webhook_inputs" else MAP_ALL
    body = b'{"items": [' + b'"x",' * (MAX_MAPPED_BODY // 4) + b'"x"]}'
    r = deliver(inprocess, body, **{setting: expression})
    assert r.status == 413
    assert r.json()["code"] == "payload_too_large"
    assert r.json()["message"].startswith(f"{setting}: mappings search request bodies of at most")
    assert workspace.invocations == []


def test_the_same_body_without_a_mapping_is_not_refused_by_the_bound(inprocess, workspace):
    body = b'{"query": "hi", "items": [' + b'"x",' * (MAX_MAPPED_BODY // 4) + b'"x"]}'
    r = deliver(inprocess, body)
    assert r.status == 200
    assert workspace.invocations[0].query == "hi"


def test_a_mapping_over_its_budget_is_400_naming_the_setting(inprocess, workspace):
    passes = ", ".join(["length(map(&to_string(@), body.items))"] * 40)
    body = items_body(MAX_MAPPED_BODY - 4096)
    r = deliver(inprocess, body, webhook_query=f"[{passes}] | to_string(@)")
    assert r.status == 400
    error = r.json()
    assert error["code"] == "invalid_param"
    assert error["message"].startswith("webhook_query expression")
    assert f"the mapping budget is {MAX_STEPS:,} steps" in error["message"]
    assert workspace.invocations == []


def test_a_large_mapping_within_its_budget_runs(inprocess, workspace):
    r = deliver(inprocess, items_body(512 * 1024), webhook_query="join(',', body.items[:3].name)")
    assert r.status == 200
    assert workspace.invocations[0].query == "item-000000,item-000001,item-000002"


@pytest.mark.parametrize(
    "expression",
    ["(" * 5000 + "a" + ")" * 5000, "!" * 10000 + "a", " | ".join(["a"] * 3000),
     "||".join(["a"] * 3000)],
    ids=["parens", "nots", "pipes", "ors"],
)  # fmt: skip
def test_pathological_expressions_are_invalid_settings_not_500s(inprocess, workspace, expression):
    r = deliver(inprocess, b'{"a": 1}', webhook_query=expression)
    assert r.status in (400, 503), r.body[:200]
    assert r.json()["code"] in ("invalid_setting", "invalid_param")
    assert "webhook_query" in r.json()["message"]


def test_other_greenlets_run_while_a_mapping_is_evaluated():
    """0.5.0 evaluated on the event loop: nothing else ran until the mapping ended."""
    document = {"body": json.loads(items_body(MAX_MAPPED_BODY - 4096)), "headers": {},
                "query": {}, "method": "POST", "path": "/webhook"}  # fmt: skip
    settings = parse_settings({**SETTINGS, "webhook_query": MAP_ALL})
    state = {"done": False, "ticks_while_mapping": 0}

    def ticker():
        while not state["done"]:
            gevent.sleep(0.001)
            if not state["done"]:
                state["ticks_while_mapping"] += 1

    def mapping():
        try:
            return map_request(settings, document, [])
        finally:
            state["done"] = True

    tick = gevent.spawn(ticker)
    job = gevent.spawn(mapping)
    mapped = job.get(timeout=60)
    tick.join(timeout=5)
    assert mapped.query.startswith('{"id":0,"name":"item-000000"')
    assert state["ticks_while_mapping"] > 0


@pytest.mark.parametrize("setting", ["webhook_query", "webhook_inputs"])
def test_a_mapping_that_computes_a_too_long_number_is_400(inprocess, workspace, setting):
    """Each number fits the 4300-digit bound; their sum does not (0.5.0: 500)."""
    body = ('{"n": [' + ",".join(["9" * 4300] * 10) + "]}").encode()
    value = json.dumps({"x": "sum(body.n)"}) if setting == "webhook_inputs" else "sum(body.n)"
    r = deliver(inprocess, body, **{setting: value})
    assert r.status == 400
    assert "longer than 4300 digits" in r.json()["message"] and setting in r.json()["message"]
    assert workspace.invocations == []
