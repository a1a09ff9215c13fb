"""Unusable settings are ``invalid_setting`` naming the setting; URL credentials; CORS Vary;
what ``GET /`` tells a caller without the key (issue 10 items 6 and 8)."""

import json

import pytest
from conftest import SETTINGS

from bridge.storage import idempotency

AUTH = {"Authorization": "Bearer test-key", "Content-Type": "application/json"}
HOOK_TOKEN = "url-token-5f1c9e0a77"


@pytest.fixture(autouse=True)
def _fresh_flights():
    idempotency.FLIGHTS.__init__(ttl=0)


def post(inprocess, path, body, *, settings, headers=AUTH):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return inprocess.request("POST", path, settings=settings, headers=headers, body=data)


def assert_invalid_setting(response, name):
    assert response.status == 503, response.body[:300]
    body = response.json()
    assert body["code"] == "invalid_setting"
    assert f"'{name}'" in body["message"]


@pytest.mark.parametrize("app", [["app-chat-0001"], 7, {"app_id": 7}, '{"app_id": ', {"id": "x"}])
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat-messages", {"query": "hi"}),
        ("/v1/workflows/run", {"inputs": {}}),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}),
        ("/extension", {"point": "app.external_data_tool.query", "params": {"query": "q"}}),
        ("/webhook", {"query": "hi"}),
    ],
)
def test_an_app_that_is_not_an_app_selector(inprocess, workspace, app, path, body):
    r = post(inprocess, path, body, settings={**SETTINGS, "app": app})
    if path == "/v1/chat/completions":
        assert r.status == 503 and r.json()["error"]["code"] == "invalid_setting"
        assert "'app'" in r.json()["error"]["message"]
    else:
        assert_invalid_setting(r, "app")
    assert workspace.invocations == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("webhook_verification", "githubb"),
        ("webhook_verification", ["api_key"]),
        ("webhook_response", "xml"),
    ],
)
def test_webhook_selects_outside_their_options(inprocess, workspace, name, value):
    r = post(inprocess, "/webhook", {"query": "hi"}, settings={**SETTINGS, name: value})
    assert_invalid_setting(r, name)
    assert workspace.invocations == []


def test_an_unknown_verification_scheme_never_falls_back_to_the_api_key(inprocess, workspace):
    """0.5.0 verified a mistyped scheme as ``api_key``: the key alone let a delivery in."""
    settings = {**SETTINGS, "webhook_verification": "stripe-v2", "webhook_secret": "s"}
    r = post(inprocess, "/webhook?api_key=test-key", {"query": "hi"}, settings=settings)
    assert_invalid_setting(r, "webhook_verification")
    assert workspace.invocations == []


@pytest.mark.parametrize("point", ["app.moderation.input", "app.moderation.output"])
def test_moderation_mode_outside_its_options(inprocess, workspace, point):
    params = {"query": "q", "inputs": {}, "text": "t"}
    settings = {**SETTINGS, "moderation_mode": "llm"}
    r = post(inprocess, "/extension", {"point": point, "params": params}, settings=settings)
    assert_invalid_setting(r, "moderation_mode")
    assert workspace.invocations == []


def test_invalid_settings_are_not_told_before_authentication(inprocess):
    settings = {**SETTINGS, "moderation_mode": "llm"}
    body = {"point": "app.moderation.input", "params": {"query": "q"}}
    r = post(
        inprocess,
        "/extension",
        body,
        settings=settings,
        headers={**AUTH, "Authorization": "Bearer no"},
    )
    assert r.status == 401  # fmt: skip


# -- the webhook token: a URL credential that is not the master key --------------------------


def hook_settings(**extra):
    return {**SETTINGS, "webhook_token": HOOK_TOKEN, **extra}


JSON_ONLY = {"Content-Type": "application/json"}


def test_without_a_webhook_token_the_api_key_works_in_the_url(inprocess, workspace):
    r = post(inprocess, "/webhook?api_key=test-key", {"query": "hi"}, settings=SETTINGS,
             headers=JSON_ONLY)  # fmt: skip
    assert r.status == 200


@pytest.mark.parametrize("name", ["token", "api_key"])
def test_the_webhook_token_opens_the_url_form(inprocess, workspace, name):
    r = post(inprocess, f"/webhook?{name}={HOOK_TOKEN}", {"query": "hi"},
             settings=hook_settings(), headers=JSON_ONLY)  # fmt: skip
    assert r.status == 200
    assert len(workspace.invocations) == 1


@pytest.mark.parametrize("name", ["token", "api_key"])
def test_with_a_webhook_token_the_master_key_is_refused_in_the_url(inprocess, workspace, name):
    r = post(inprocess, f"/webhook?{name}=test-key", {"query": "hi"},
             settings=hook_settings(), headers=JSON_ONLY)  # fmt: skip
    assert r.status == 401
    assert workspace.invocations == []


def test_headers_still_take_the_api_key_with_a_webhook_token(inprocess, workspace):
    r = post(inprocess, "/webhook", {"query": "hi"}, settings=hook_settings())
    assert r.status == 200


def test_the_token_never_reaches_the_mapping_document(inprocess, workspace):
    settings = hook_settings(webhook_query="to_string(query)")
    r = post(inprocess, f"/webhook?token={HOOK_TOKEN}&x=1", {}, settings=settings,
             headers=JSON_ONLY)  # fmt: skip
    assert r.status == 200
    assert workspace.invocations[0].query == '{"x":"1"}'


def meta_get(inprocess, token, settings):
    target = f"/webhook?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token={token}"
    return inprocess.request("GET", target, settings=settings)


def test_meta_verify_token_is_the_webhook_token_when_set(inprocess):
    settings = hook_settings(webhook_verification="meta", webhook_secret="app-secret")
    assert meta_get(inprocess, HOOK_TOKEN, settings).text == "1158201444"
    assert meta_get(inprocess, "test-key", settings).status == 401
    plain = {**SETTINGS, "webhook_verification": "meta", "webhook_secret": "app-secret"}
    assert meta_get(inprocess, "test-key", plain).text == "1158201444"


# -- CORS: Vary on every answer once CORS is configured --------------------------------------

CORS = {**SETTINGS, "cors_allowed_origins": "https://app.example.com"}


@pytest.mark.parametrize("origin", ["https://evil.example", None])
def test_vary_origin_even_when_the_origin_is_not_allowed(inprocess, origin):
    headers = {**AUTH, **({"Origin": origin} if origin else {})}
    r = post(inprocess, "/v1/chat-messages", {"query": "hi"}, settings=CORS, headers=headers)
    assert r.status == 200
    assert r.header("Vary") == "Origin"
    assert r.header("Access-Control-Allow-Origin") is None


def test_no_cors_headers_at_all_without_the_setting(inprocess):
    headers = {**AUTH, "Origin": "https://app.example.com"}
    r = post(inprocess, "/v1/chat-messages", {"query": "hi"}, settings=SETTINGS, headers=headers)
    assert r.header("Vary") is None and r.header("Access-Control-Allow-Origin") is None


# -- GET / without the key ------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["github", "stripe", "hmac_sha256", "shopify", "telegram"])
def test_diagnostics_without_the_key_never_names_the_scheme(inprocess, scheme):
    settings = {**SETTINGS, "webhook_verification": scheme}  # webhook_secret missing: a problem
    page = inprocess.request("GET", "/", settings=settings).text
    assert scheme not in page
    assert "webhook_secret" in page  # the row is there, flagged, without the why
    keyed = inprocess.request("GET", "/", settings=settings, headers={"X-API-Key": "test-key"})
    assert scheme in keyed.text
