import pytest
from werkzeug.test import EnvironBuilder

from bridge.app.gateway import (
    PARAMETERS,
    AppGateway,
    AppKind,
    ModeMemory,
    Reason,
    input_variables,
    kind_of_event,
    mode_of_first_event,
    translate_failure,
)
from bridge.call import Call
from devkit.workspace import App, Invocation, Script, _Run, inner_api_error


def first_event(mode):
    inv = Invocation("a", "q", {}, "streaming", "", "", "", "t")
    return _Run(
        App("a", mode, script=Script(answer="x")), inv, "c1" if mode != "workflow" else ""
    ).events()[0]


@pytest.mark.parametrize(
    ("mode", "kind"),
    [
        ("chat", AppKind.CHAT),
        ("agent-chat", AppKind.CHAT),
        ("advanced-chat", AppKind.CHAT),
        ("completion", AppKind.COMPLETION),
        ("workflow", AppKind.WORKFLOW),
    ],
)
def test_mode_is_learned_from_the_first_event(mode, kind):
    event = first_event(mode)
    assert mode_of_first_event(event) == mode
    assert kind_of_event(event) is kind


def test_error_event_tells_kind_but_not_mode():
    error = {"event": "error", "workflow_run_id": "r", "code": "x", "message": "m", "status": 400}
    assert mode_of_first_event(error) is None
    assert kind_of_event(error) is AppKind.WORKFLOW


@pytest.mark.parametrize(
    ("text", "reason", "status", "code"),
    [
        (inner_api_error("app not found"), Reason.APP_NOT_FOUND, 400, "app_unavailable"),
        (inner_api_error("missing query"), Reason.MISSING_QUERY, 400, "invalid_param"),
        (
            inner_api_error("city is required in input form"),
            Reason.INVALID_INPUT,
            400,
            "invalid_param",
        ),
        (inner_api_error("unexpected app type"), Reason.UNSUPPORTED_APP, 400, "app_unavailable"),
        (
            inner_api_error("Your quota is used up", code="provider_quota_exceeded"),
            Reason.APP_ERROR,
            400,
            "provider_quota_exceeded",
        ),
        (
            inner_api_error("Too many requests", code="too_many_requests", status=429),
            Reason.APP_ERROR,
            429,
            "too_many_requests",
        ),
        ("read app failed: request failed: boom", Reason.RUN_FAILED, 500, "internal_server_error"),
        (
            "invocation exited without response after 250 seconds",
            Reason.TIMEOUT,
            504,
            "gateway_timeout",
        ),
        (
            "invoke app failed: dial tcp 10.0.0.1:5001: connect refused",
            Reason.UNREACHABLE,
            502,
            "app_unavailable",
        ),
        (
            "permission denied, you need to enable app access in plugin manifest",
            Reason.PERMISSION,
            500,
            "internal_server_error",
        ),
        ("something else entirely", Reason.RUN_FAILED, 500, "internal_server_error"),
    ],
)
def test_failure_translation(text, reason, status, code):
    failure = translate_failure(Exception(text))
    assert (failure.reason, failure.status, failure.code) == (reason, status, code)
    assert "Traceback" not in failure.message and "10.0.0.1" not in failure.message


def test_empty_invalid_param_with_a_conversation_is_conversation_not_exists():
    failure = translate_failure(Exception(inner_api_error("")), conversation_id="c-1")
    assert failure.reason is Reason.CONVERSATION_NOT_EXISTS
    assert (failure.status, failure.code, failure.message) == (
        404,
        "not_found",
        "Conversation Not Exists.",
    )
    assert translate_failure(Exception(inner_api_error(""))).reason is Reason.INVALID_INPUT


def test_mode_memory_is_bounded():
    memory = ModeMemory(capacity=3)
    for i in range(5):
        memory.learn(f"app-{i}", "chat")
    assert [memory.get(f"app-{i}") for i in range(5)] == [None, None, "chat", "chat", "chat"]


def test_input_variables_flatten_the_form():
    form = {
        "user_input_form": [{"text-input": {"variable": "city", "required": True}}, {"bogus": 1}]
    }
    assert input_variables(form) == [{"type": "text-input", "variable": "city", "required": True}]


def test_non_json_or_5xx_bodies_never_mean_conversation_not_exists():
    proxy_page = "invoke app failed: request failed with status code: 502 and respond with: <html>Bad Gateway</html>"
    failure = translate_failure(Exception(proxy_page), conversation_id="c-1")
    assert (failure.reason, failure.status, failure.code) == (
        Reason.UNREACHABLE,
        502,
        "app_unavailable",
    )
    server_error = Exception(inner_api_error("", code="invalid_param", status=500))
    assert (
        translate_failure(server_error, conversation_id="c-1").reason
        is not Reason.CONVERSATION_NOT_EXISTS
    )


def test_user_not_found_names_cause_and_fix():
    from devkit.workspace import USER_NOT_FOUND

    failure = translate_failure(Exception(USER_NOT_FOUND))
    assert failure.reason is Reason.DIFY_USER_NOT_FOUND
    assert (failure.status, failure.code) == (502, "dify_user_not_found")
    assert "1.15" in failure.message and "upgrade Dify" in failure.message


class FakeApp:
    """``session.app``'s ``fetch_app``, counted."""

    chat = None

    def __init__(self):
        self.fetches = 0

    def fetch_app(self, app_id):
        self.fetches += 1
        return {"user_input_form": [], "opening_statement": app_id}


def test_the_app_is_looked_up_only_when_a_fetch_or_run_needs_it():
    app, lookups = FakeApp(), []

    def provide():
        lookups.append(1)
        return app

    gateway = AppGateway(provide, scope="ep-lazy")
    assert gateway.mode("a1") is None
    assert lookups == []  # a mode is memory: no app helper built
    assert gateway.parameters("a1")["opening_statement"] == "a1"
    assert gateway.fetched("a1").body == b'{"user_input_form": [], "opening_statement": "a1"}'
    assert (lookups, app.fetches) == ([1], 1)  # looked up once, fetched once

    later = AppGateway(lambda: pytest.fail("a cached answer needs no app"), scope="ep-lazy")
    assert later.parameters("a1")["opening_statement"] == "a1"


class NoAppSession:
    endpoint_id = "ep-call"

    @property
    def app(self):
        raise AssertionError("session.app looked up for a request answered from memory")


def test_a_call_hands_the_gateway_session_app_unlooked_up():
    PARAMETERS.put("ep-call\x00a1", {"user_input_form": []})
    request = EnvironBuilder(path="/v1/parameters").get_request()
    call = Call.from_request(request, {"api_key": "k", "app": {"app_id": "a1"}}, NoAppSession())
    assert call.gateway.fetched("a1").body == b'{"user_input_form": []}'
