"""CORS from cors_allowed_origins: preflights and response headers."""

import json

from conftest import SETTINGS

CORS = {**SETTINGS, "cors_allowed_origins": "https://app.example.com, https://admin.example.com/"}
PREFLIGHT = {
    "Origin": "https://app.example.com",
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type",
}


def test_preflight_for_an_allowed_origin(inprocess, workspace):
    r = inprocess.request("OPTIONS", "/v1/chat-messages", settings=CORS, headers=PREFLIGHT)
    assert r.status == 204
    assert r.header("Access-Control-Allow-Origin") == "https://app.example.com"
    assert r.header("Access-Control-Allow-Methods") == "POST"
    assert "Authorization" in r.header("Access-Control-Allow-Headers")
    assert r.header("Vary") == "Origin"
    assert workspace.invocations == []


def test_preflight_refused_for_other_origins_methods_or_when_unset(inprocess):
    for settings, headers in [
        (CORS, {**PREFLIGHT, "Origin": "https://evil.example"}),
        (CORS, {**PREFLIGHT, "Access-Control-Request-Method": "DELETE"}),
        (SETTINGS, PREFLIGHT),
    ]:
        r = inprocess.request("OPTIONS", "/v1/chat-messages", settings=settings, headers=headers)
        assert r.status == 405
        assert r.header("Access-Control-Allow-Methods") is None


def test_actual_responses_carry_the_origin(inprocess):
    body = json.dumps({"query": "hi"}).encode()
    headers = {
        "Origin": "https://admin.example.com",
        "Authorization": "Bearer test-key",
        "Content-Type": "application/json",
    }
    r = inprocess.request("POST", "/v1/chat-messages", settings=CORS, headers=headers, body=body)
    assert r.status == 200
    assert r.header("Access-Control-Allow-Origin") == "https://admin.example.com"
    assert "X-Conversation-Id" in r.header("Access-Control-Expose-Headers")
    denied = inprocess.request(
        "POST",
        "/v1/chat-messages",
        settings=CORS,
        headers={**headers, "Authorization": "Bearer no"},
        body=body,
    )
    assert (
        denied.status == 401
        and denied.header("Access-Control-Allow-Origin") == "https://admin.example.com"
    )
    plain = inprocess.request(
        "POST", "/v1/chat-messages", settings=SETTINGS, headers=headers, body=body
    )
    assert plain.header("Access-Control-Allow-Origin") is None


def test_openai_preflight_and_wildcard(inprocess):
    settings = {**SETTINGS, "cors_allowed_origins": "*"}
    r = inprocess.request(
        "OPTIONS",
        "/v1/chat/completions",
        settings=settings,
        headers={**PREFLIGHT, "Origin": "http://localhost:3000"},
    )
    assert (r.status, r.header("Access-Control-Allow-Origin")) == (204, "http://localhost:3000")
