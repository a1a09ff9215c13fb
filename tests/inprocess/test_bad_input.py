"""Bad input on every route that runs the app: ``400 invalid_param``, never a 500 (SPEC §9.1).

Each body is sent as the daemon forwards it, through the SDK's executor; the app must not
run. Depth, digit and text bounds are in ``bridge.transport.body`` and docs/limits.md.
"""

import json

import pytest
from conftest import CHAT_APP, SETTINGS

from bridge.transport.body import MAX_DEPTH

AUTH = {"Authorization": "Bearer test-key", "Content-Type": "application/json"}


def deep(levels):
    """A JSON value ``levels`` containers deep: [[[…]]]."""
    return "[" * levels + "]" * levels


# route, app, body template with {v} where the bad JSON value goes
ROUTES = [
    ("/v1/chat-messages", CHAT_APP, '{{"query": "hi", "inputs": {{"a": {v}}}}}'),
    ("/v1/chat-messages", CHAT_APP, '{{"query": {v}, "inputs": {{}}}}'),
    ("/v1/completion-messages", "app-completion-0001", '{{"inputs": {{"a": {v}}}}}'),
    ("/v1/workflows/run", "app-workflow-0001", '{{"inputs": {{"a": {v}}}}}'),
    ("/v1/chat/completions", CHAT_APP, '{{"messages": [{{"role": "user", "content": {v}}}]}}'),
    ("/v1/chat/completions", CHAT_APP,
     '{{"messages": [{{"role": "user", "content": "hi"}}], "inputs": {{"a": {v}}}}}'),
    ("/extension", CHAT_APP,
     '{{"point": "app.external_data_tool.query", "params": {{"query": {v}, "inputs": {{}}}}}}'),
    ("/extension", CHAT_APP,
     '{{"point": "app.moderation.input", "params": {{"query": "q", "inputs": {{"a": {v}}}}}}}'),
    ("/extension", CHAT_APP, '{{"point": "app.moderation.output", "params": {{"text": {v}}}}}'),
    ("/webhook", CHAT_APP, '{{"query": {v}, "inputs": {{}}}}'),
    ("/webhook", CHAT_APP, '{{"query": "hi", "inputs": {{"a": {v}}}}}'),
]  # fmt: skip

BAD_VALUES = {
    "lone surrogate": '"\\ud800"',
    "lone low surrogate": '"x\\udc00y"',
    "NUL": '"a\\u0000b"',
    "NUL in a key": '{"a\\u0000": 1}',
    f"nested {MAX_DEPTH + 1} deep": deep(MAX_DEPTH + 1),
    "nested 251 deep": deep(251),
    "nested 100000 deep": deep(100_000),
    "4301 digits": "1" * 4301,
    "NaN": "NaN",
    "overflowing float": "1e999",
}


def send(inprocess, path, app_id, body, *, settings=None, headers=AUTH):
    settings = {**(settings or SETTINGS), "app": {"app_id": app_id}}
    return inprocess.request("POST", path, settings=settings, headers=headers, body=body)


def assert_invalid_param(response, family="dify"):
    assert response.status == 400, response.body[:300]
    body = response.json()
    if family == "openai":
        assert body["error"]["code"] == "invalid_param"
    else:
        assert body["code"] == "invalid_param" and body["status"] == 400
    assert "Traceback" not in response.text


@pytest.mark.parametrize(("path", "app_id", "template"), ROUTES, ids=lambda v: str(v)[:28])
@pytest.mark.parametrize("label", list(BAD_VALUES))
def test_bad_json_values_are_invalid_param_everywhere(inprocess, workspace, path, app_id,
                                                      template, label):  # fmt: skip
    body = template.format(v=BAD_VALUES[label]).encode()
    settings = {**SETTINGS, "moderation_mode": "app", "api_key": "test-key"}
    r = send(inprocess, path, app_id, body, settings=settings)
    assert_invalid_param(r, "openai" if "/chat/completions" in path else "dify")
    assert workspace.invocations == []


def test_the_depth_limit_is_exact(inprocess, workspace):
    # the body is level 1, inputs level 2: MAX_DEPTH - 2 more levels fit
    fits = f'{{"query": "hi", "inputs": {{"a": {deep(MAX_DEPTH - 2)}}}}}'.encode()
    assert send(inprocess, "/v1/chat-messages", CHAT_APP, fits).status == 200
    over = f'{{"query": "hi", "inputs": {{"a": {deep(MAX_DEPTH - 1)}}}}}'.encode()
    r = send(inprocess, "/v1/chat-messages", CHAT_APP, over)
    assert_invalid_param(r)
    assert f"nested more than {MAX_DEPTH} levels" in r.json()["message"]


def test_valid_surrogate_pairs_and_escapes_still_pass(inprocess, workspace):
    body = b'{"query": "smile \\ud83d\\ude00 and a literal \\\\u0000", "inputs": {}}'
    r = send(inprocess, "/v1/chat-messages", CHAT_APP, body)
    assert r.status == 200
    assert workspace.invocations[0].query == "smile \U0001f600 and a literal \\u0000"


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b'{"query": "caf\xe9", "inputs": {}}', "not valid UTF-8"),
        (b'{"query": "\xed\xa0\x80", "inputs": {}}', "not valid UTF-8"),  # encoded surrogate
        (b'{"query": "1e5", "inputs": {"n": ' + b"9" * 5000 + b"}}", "4300 digits"),
    ],
)
def test_bytes_that_are_not_utf8_or_too_long_numbers(inprocess, workspace, raw, fragment):
    for path in ("/v1/chat-messages", "/webhook"):
        r = send(inprocess, path, CHAT_APP, raw)
        assert_invalid_param(r)
        assert fragment in r.json()["message"]
    assert workspace.invocations == []


FORM = {"Authorization": "Bearer test-key", "Content-Type": "application/x-www-form-urlencoded"}


@pytest.mark.parametrize(
    "form",
    [
        b"payload=%7B%22a%22%3A" + b"%5B" * 3000 + b"%7D",  # Slack-style payload=, deep
        b"payload=%7B%22a%22%3A%22%5Cud800%22%7D",  # payload={"a":"\ud800"}
        b"text=a%00b",  # NUL in a field
        b"text=%FF%FE",  # not UTF-8 once decoded
    ],
)
def test_bad_form_fields_are_invalid_param(inprocess, workspace, form):
    r = send(inprocess, "/webhook", CHAT_APP, form, headers=FORM)
    assert_invalid_param(r)
    assert workspace.invocations == []


@pytest.mark.parametrize("raw", [b"caf\xe9 au lait", b"nul \x00 byte"])
def test_bad_text_bodies_are_invalid_param(inprocess, workspace, raw):
    headers = {"Authorization": "Bearer test-key", "Content-Type": "text/plain"}
    r = send(inprocess, "/webhook", CHAT_APP, raw, headers=headers)
    assert_invalid_param(r)
    assert workspace.invocations == []


def test_mapped_header_or_query_values_are_checked_before_the_app_runs(inprocess, workspace):
    """Whatever a mapping picks (here the query string) meets the same bounds."""
    settings = {**SETTINGS, "webhook_query": "query.q"}
    r = send(inprocess, "/webhook?q=a%00b", CHAT_APP, json.dumps({}).encode(), settings=settings)
    assert_invalid_param(r)
    assert workspace.invocations == []


def test_number_input_with_thousands_of_digits_in_a_string(inprocess, workspace):
    from devkit.workspace import App

    form = [{"number": {"variable": "n", "label": "N"}}]
    workspace.add_app(App("num-wf", "workflow", user_input_form=form))
    settings = {**SETTINGS, "webhook_inputs": json.dumps({"n": "body.n"})}
    body = json.dumps({"n": "7" * 5000}).encode()
    r = send(inprocess, "/webhook", "num-wf", body, settings=settings)
    assert_invalid_param(r)
    assert "'n'" in r.json()["message"]
    assert workspace.invocations == []
