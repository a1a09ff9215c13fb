"""Aggregating a stream gives exactly the blocking object Dify returns for the same run."""

import pytest

from bridge.app.aggregate import Aggregator, aggregate
from bridge.errors import BridgeError
from devkit.workspace import App, Invocation, Script, _Run


def make_run(mode, **script):
    inv = Invocation("a", "q", {"x": "1"}, "streaming", "", "", "", "t")
    return _Run(App("a", mode, script=Script(answer="Hello world, again", **script)), inv, "conv-1")


@pytest.mark.parametrize("mode", ["chat", "agent-chat", "advanced-chat", "completion", "workflow"])
def test_aggregate_equals_blocking(mode):
    run = make_run(mode)
    assert aggregate(run.events()) == run.blocking()


def test_failed_workflow_is_a_body_not_an_error():
    run = make_run("workflow", workflow_status="failed")
    body = aggregate(run.events())
    assert body["data"]["status"] == "failed"
    assert body["data"]["error"]
    assert body == run.blocking()


def test_message_replace_replaces_the_answer_so_far():
    run = make_run("chat")
    events = run.events()
    replace = dict(events[0], event="message_replace", answer="[redacted]")
    replace.pop("from_variable_selector")
    body = aggregate([*events[:2], replace, events[-1]])
    assert body["answer"] == "[redacted]"


def test_error_event_raises_with_its_code_and_status():
    events = list(make_run("chat", error_after=1).stream())
    with pytest.raises(BridgeError) as caught:
        aggregate(events)
    assert (caught.value.code, caught.value.status) == ("completion_request_error", 400)


@pytest.mark.parametrize("mode", ["advanced-chat", "workflow"])
@pytest.mark.parametrize("script", [{"pause": True}, {"reasoning": "hmm, let me see"}])
def test_dify_115_runs_aggregate_to_difys_blocking_object(mode, script):
    run = make_run(mode, **script)
    assert aggregate(run.events()) == run.blocking()


def test_paused_and_reasoning_are_exposed():
    from bridge.app.aggregate import Aggregator, is_paused, run_status

    aggregator = Aggregator()
    for event in make_run("advanced-chat", pause=True, reasoning="a b").events():
        aggregator.feed(event)
    assert aggregator.paused and aggregator.reasoning_text == "a b"
    assert aggregator.forms and aggregator.forms[0]["form_token"]
    result = aggregator.result()
    assert is_paused(result) and run_status(result) == "paused"
    done = aggregate(make_run("workflow").events())
    assert not is_paused(done) and run_status(done) == "succeeded"


def test_unknown_events_are_ignored():
    run = make_run("chat")
    events = run.events()
    future = {**events[0], "event": "hologram_rendered", "data": {"x": 1}}
    assert aggregate([events[0], future, *events[1:]]) == run.blocking()


@pytest.mark.parametrize(
    ("reasoning", "text"),
    [
        ({"1711": "First, think.", "1712": "Then check."}, "First, think.\n\nThen check."),
        ({}, ""),
        ("plain text", "plain text"),  # before Dify 1.15 settled on a dict per node
        (None, ""),
    ],
)
def test_reasoning_from_message_end_metadata_per_llm_node(reasoning, text):
    """Dify 1.15 keeps ``metadata.reasoning`` per LLM node id (TaskStateMetadata)."""
    aggregator = Aggregator()
    aggregator.feed({"event": "message_end", "id": "m", "metadata": {"reasoning": reasoning}})
    assert aggregator.reasoning_text == text
