import json
import re
from html import unescape

from bridge.config.settings import parse_settings
from bridge.protocols.diagnostics import (
    SETTING_NAMES,
    example_inputs,
    page_model,
    render,
    render_page,
    routes_for,
)
from bridge.transport.routes import ROUTES

RAW = {
    "api_key": "super-secret-key",
    "app": {"app_id": "app-1234"},
    "webhook_verification": "github",
    "webhook_secret": "gh-secret-value",
    "reply_token": "ghp_reply-token-value",
    "model_name": "my-model",
}
PARAMETERS = {
    "user_input_form": [
        {"text-input": {"variable": "city", "required": True, "label": "City"}},
        {"select": {"variable": "unit", "required": True, "options": ["C", "F"]}},
        {"number": {"variable": "days", "required": True}},
        {"text-input": {"variable": "note", "required": False}},
        {"text-input": {"variable": "query", "required": True}},
    ]
}


def page(raw, *, authenticated, base="https://dify.io/e/abc", **extra):
    return render_page(
        base=base,
        settings=parse_settings(raw),
        raw_settings=raw,
        authenticated=authenticated,
        **extra,
    )


def paths(mode, verification="api_key"):
    return [(r.method, r.path) for r in routes_for(mode, verification)]


def test_public_page_shows_urls_but_no_secret_value_or_app_id():
    html = page(RAW, authenticated=False)
    assert "https://dify.io/e/abc/v1/chat-messages" in html
    for secret in ("super-secret-key", "gh-secret-value", "ghp_reply-token-value"):
        assert secret not in html
    assert "app-1234" not in html and "my-model" not in html  # values only with the key
    assert 'id="keyform"' in html and 'type="password"' in html


def test_keyed_page_shows_values_and_app_id_but_still_no_secret():
    html = page(RAW, authenticated=True)
    assert "app-1234" in html and "my-model" in html
    for secret in ("super-secret-key", "gh-secret-value", "ghp_reply-token-value"):
        assert secret not in html
    assert 'data-keyed="true"' in html and "Try it" in html


def test_only_the_routes_that_work_for_the_mode():
    chat, workflow = paths("advanced-chat"), paths("workflow")
    assert ("POST", "/v1/chat-messages") in chat
    assert ("POST", "/v1/workflows/run") not in chat
    assert ("POST", "/v1/completion-messages") not in chat
    assert ("POST", "/v1/workflows/run") in workflow and (
        "POST",
        "/v1/chat-messages",
    ) not in workflow
    assert ("POST", "/v1/completion-messages") in paths("completion")
    for shown in (chat, workflow):
        assert {
            ("POST", "/v1/chat/completions"),
            ("POST", "/extension"),
            ("POST", "/webhook"),
        } <= set(shown)
    assert ("GET", "/webhook") not in chat and ("GET", "/webhook") in paths("chat", "meta")
    unknown = paths(None)
    assert len(unknown) == len(ROUTES) - 1  # every app kind, no GET /webhook without meta


def test_every_setting_shows_its_value_or_its_default():
    model = page_model(
        base="https://x/e/h",
        settings=parse_settings(RAW),
        raw_settings=RAW,
        authenticated=True,
    )
    rows = {row.name: row for row in model.settings}
    assert set(rows) == set(SETTING_NAMES) and len(SETTING_NAMES) == 21
    assert rows["model_name"].value == "my-model"
    assert rows["webhook_response"] == rows["webhook_response"].__class__(
        "webhook_response", "default", "dify"
    )
    assert rows["run_mode"].value.startswith("auto") and rows["webhook_reply"].value == "response"
    assert rows["self_url"].value.startswith("http://127.0.0.1:$SERVER_PORT/e/")
    assert rows["webhook_secret"].value == rows["reply_token"].value == "set (secret, never shown)"


def test_problems_are_named():
    html = page({"webhook_verification": "stripe"}, authenticated=False)
    assert "need attention" in html
    for name in ("api_key", "app", "webhook_secret"):
        assert f'<code>{name}</code></td><td class="problem">' in html


def test_guide_follows_the_reply_platform_then_the_verification():
    html = page({**RAW, "webhook_reply": "slack"}, authenticated=True)
    assert "Setup guide: Slack" in html
    assert '<code id="webhook-url">https://dify.io/e/abc/webhook</code>' in html
    assert "Request URL: <code>https://dify.io/e/abc/webhook</code>" in html
    assert "Setup guide: GitHub" in page(RAW, authenticated=True)
    assert "Setup guide: Any sender" in page({"api_key": "k"}, authenticated=True)
    assert "Setup guide: WhatsApp" in page(
        {**RAW, "webhook_verification": "meta", "webhook_reply": "whatsapp"}, authenticated=True
    )


def test_the_public_view_names_no_platform_unless_nothing_can_call_the_endpoint():
    public = page({**RAW, "webhook_reply": "slack"}, authenticated=False)
    assert "Setup guide:" not in public and "Request URL:" not in public
    assert "Enter the endpoint's API key above to see the setup guide" in public
    keyless = {k: v for k, v in RAW.items() if k != "api_key"}
    assert "Setup guide: GitHub" in page(keyless, authenticated=False)


def test_example_inputs_fill_every_required_input_but_the_query_variable():
    assert example_inputs(PARAMETERS, "query") == {"city": "example", "unit": "C", "days": 1}


def test_keyed_examples_carry_the_apps_inputs_and_match_their_try_data():
    html = page(RAW, authenticated=True, mode="workflow", parameters=PARAMETERS)
    data = json.loads(re.search(r'id="examples-data">(.*?)</script>', html).group(1))
    workflow = data["service-workflow"]
    assert workflow["url"] == "https://dify.io/e/abc/v1/workflows/run"
    assert workflow["body"]["inputs"] == {
        "city": "example",
        "unit": "C",
        "days": 1,
        "query": "Hello",
    }
    assert "service-chat" not in data  # a workflow app: no chat example
    shown = unescape(re.search(r'<pre id="ex-service-workflow"[^>]*>(.*?)</pre>', html, re.S)[1])
    assert json.dumps(workflow["body"]) in shown and "$APP_BRIDGE_KEY" in shown
    assert data["openai-chat"]["body"]["model"] == "my-model"


def test_public_examples_have_no_app_inputs_and_no_try_buttons():
    html = page(RAW, authenticated=False, mode="workflow", parameters=PARAMETERS)
    assert "city" not in html and "Try it" not in html and 'id="examples-data"' not in html


def test_everything_dynamic_is_escaped():
    html = page(RAW, authenticated=True, base='https://x.io/e/"><script>alert(1)</script>')
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;" in html
    data = re.search(r'id="examples-data">(.*?)</script>', html, re.S).group(1)
    assert "<" not in data and json.loads(data)["openai-models"]["method"] == "GET"


def test_notices_are_shown():
    model = page_model(
        base=None,
        settings=parse_settings(RAW),
        raw_settings=RAW,
        authenticated=False,
        notices=["Deferred runs fall back to inline: self_url unreachable."],
    )
    html = render(model)
    assert "fall back to inline" in html and "unknown (no Dify-Hook-Url header)" in html
    assert "data-runnable" not in html  # no base URL: the examples are templates
