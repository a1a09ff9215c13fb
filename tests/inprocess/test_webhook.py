"""Webhook mapping, idempotency, continuity and responses through the SDK's executor."""

import json
import threading
import time
from urllib.parse import urlencode

import pytest
from signers import settings as scheme_settings
from signers import sign

from bridge.storage import idempotency
from bridge.storage.idempotency import Deliveries, StoredResponse
from bridge.storage.records import Records
from devkit.workspace import App, DirectStorage, Script, Storage, inner_api_error

KEY = {"Authorization": "Bearer hook-key-0001"}


def webhook(
    inprocess,
    body,
    *,
    content_type="application/json",
    headers=None,
    settings=None,
    target="/webhook",
):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return inprocess.request(
        "POST", target, settings=settings, body=data,
        headers={"Content-Type": content_type, **KEY, **(headers or {})},
    )  # fmt: skip


@pytest.fixture(autouse=True)
def _fresh_flights():
    idempotency.FLIGHTS.__init__(ttl=0)


@pytest.fixture
def issue_app(workspace):
    form = [
        {"text-input": {"variable": "title", "label": "Title", "required": True}},
        {"number": {"variable": "number", "label": "Number"}},
        {"checkbox": {"variable": "draft", "label": "Draft"}},
        {"paragraph": {"variable": "payload", "label": "Payload"}},
    ]
    workspace.add_app(App("issue-wf", "workflow", user_input_form=form,
                          script=Script(outputs={"summary": "#{inputs[number]} {inputs[title]}"})))  # fmt: skip
    return scheme_settings("api_key", "issue-wf")


GITHUB_ISSUE = {"action": "opened", "issue": {"number": 42, "title": "Crash on start", "draft": "false"},
                "sender": {"login": "octocat"}}  # fmt: skip


def test_json_mapping_with_coercion(inprocess, workspace, issue_app):
    s = {
        **issue_app,
        "webhook_inputs": json.dumps(
            {
                "title": "body.issue.title",
                "number": "to_string(body.issue.number)",
                "draft": "body.issue.draft",
            }
        ),
    }
    r = webhook(inprocess, GITHUB_ISSUE, settings=s)
    assert r.status == 200, r.text
    (run,) = workspace.invocations
    assert run.inputs["title"] == "Crash on start"
    assert run.inputs["number"] == 42  # "42" coerced to the app's number type
    assert run.inputs["draft"] is False
    assert json.loads(run.inputs["payload"]) == GITHUB_ISSUE  # whole body, app declares `payload`
    assert r.json()["data"]["outputs"] == {"summary": "#42 Crash on start"}


def test_headers_and_query_are_in_the_document(inprocess, workspace, issue_app):
    s = {
        **issue_app,
        "webhook_inputs": json.dumps(
            {"title": "join(' ', [headers.\"x-github-event\", query.repo])"}
        ),
    }
    r = webhook(
        inprocess,
        GITHUB_ISSUE,
        settings=s,
        headers={"X-GitHub-Event": "issues"},
        target="/webhook?repo=dify",
    )
    assert r.status == 200, r.text
    assert workspace.invocations[0].inputs["title"] == "issues dify"


def test_form_body_and_slack_payload_field(inprocess, workspace, issue_app):
    s = {
        **issue_app,
        "webhook_inputs": json.dumps({"title": "body.text", "number": "body.payload.n"}),
    }
    form = urlencode({"text": "deploy now", "payload": json.dumps({"n": "7"})}).encode()
    r = webhook(inprocess, form, content_type="application/x-www-form-urlencoded", settings=s)
    assert r.status == 200, r.text
    assert (
        workspace.invocations[0].inputs["title"],
        workspace.invocations[0].inputs["number"],
    ) == ("deploy now", 7)


def test_text_body(inprocess, workspace, issue_app):
    s = {**issue_app, "webhook_inputs": json.dumps({"title": "body"})}
    r = webhook(inprocess, b"plain text alert", content_type="text/plain", settings=s)
    assert r.status == 200
    assert workspace.invocations[0].inputs["title"] == "plain text alert"


def test_defaults_without_mapping_are_difys_caller_fields(inprocess, workspace):
    s = scheme_settings("api_key", "app-chat-0001")
    r = webhook(inprocess, {"inputs": {}, "query": "hello there", "user": "ext-7"}, settings=s)
    assert r.json()["answer"] == "Hello from Chat. You said: hello there"
    assert workspace.invocations[0].user == "ext-7"


def test_chat_app_without_query_gets_the_payload_as_message(inprocess, workspace):
    s = scheme_settings("api_key", "app-chat-0001")
    webhook(inprocess, {"event": "ping"}, settings=s)
    assert json.loads(workspace.invocations[0].query) == {"event": "ping"}


@pytest.mark.parametrize(
    ("mapping", "fragment", "status"),
    [
        (
            {"title": "body.missing.path"},
            "input 'title' is required by the app (webhook_inputs expression 'body.missing.path' found nothing)",
            400,
        ),
        (
            {"title": "body.issue.title", "number": "body.issue.title"},
            "input 'number' must be a number",
            400,
        ),
        ({"title": "body.[["}, "webhook_inputs", 503),
        ({"title": "abs(body.issue.title)"}, "failed on this payload", 400),
    ],
)
def test_mapping_errors_name_the_problem(
    inprocess, workspace, issue_app, mapping, fragment, status
):
    r = webhook(
        inprocess, GITHUB_ISSUE, settings={**issue_app, "webhook_inputs": json.dumps(mapping)}
    )
    assert r.status == status, r.text
    assert fragment in r.json()["message"]
    assert workspace.invocations == []


def test_response_modes(inprocess, workspace, issue_app):
    s = {
        **issue_app,
        "webhook_inputs": json.dumps({"title": "body.issue.title", "number": "body.issue.number"}),
    }
    r = webhook(inprocess, GITHUB_ISSUE, settings={**s, "webhook_response": "outputs"})
    assert r.json() == {"summary": "#42 Crash on start"}
    r = webhook(inprocess, GITHUB_ISSUE, settings={**s, "webhook_response": "text"})
    assert (r.text, r.header("Content-Type")) == ("#42 Crash on start", "text/plain; charset=utf-8")
    chat = scheme_settings("api_key", "app-chat-0001", webhook_response="outputs")
    assert webhook(inprocess, {"query": "q"}, settings=chat).json() == {
        "answer": "Hello from Chat. You said: q"
    }


def test_failed_workflow_in_text_mode_is_an_error(inprocess, workspace, issue_app):
    workspace.app("issue-wf").script = Script(workflow_status="failed", error_message="node broke")
    s = {
        **issue_app,
        "webhook_inputs": json.dumps({"title": "body.issue.title"}),
        "webhook_response": "text",
    }
    r = webhook(inprocess, GITHUB_ISSUE, settings=s)
    assert (r.status, r.json()["message"]) == (400, "node broke")


def test_idempotency_key_replays_and_concurrent_copies_run_once(inprocess, workspace):
    workspace.app("app-chat-0001").script = Script(first_delay=0.3)
    s = scheme_settings("api_key", "app-chat-0001")
    results = []

    def send():
        results.append(
            webhook(
                inprocess, {"query": "once"}, settings=s, headers={"Idempotency-Key": "order-991"}
            )
        )

    threads = [threading.Thread(target=send) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(workspace.invocations) == 1
    assert sorted(r.header("Idempotent-Replay") or "first" for r in results) == [
        "first",
        "true",
        "true",
    ]
    assert len({r.body for r in results}) == 1
    later = webhook(
        inprocess, {"query": "once"}, settings=s, headers={"Idempotency-Key": "order-991"}
    )
    assert later.header("Idempotent-Replay") == "true" and len(workspace.invocations) == 1


def test_client_errors_are_remembered_server_errors_are_not(inprocess, workspace, issue_app):
    s = {**issue_app, "webhook_inputs": json.dumps({"title": "body.nothing"})}
    first = webhook(inprocess, GITHUB_ISSUE, settings=s, headers={"Idempotency-Key": "d-1"})
    again = webhook(inprocess, GITHUB_ISSUE, settings=s, headers={"Idempotency-Key": "d-1"})
    assert (first.status, again.status, again.header("Idempotent-Replay")) == (400, 400, "true")
    workspace.app("app-chat-0001").script = Script(
        raise_before="read app failed: request failed: x"
    )
    chat = scheme_settings("api_key", "app-chat-0001")
    assert (
        webhook(inprocess, {"query": "q"}, settings=chat, headers={"Idempotency-Key": "d-2"}).status
        == 500
    )
    workspace.app("app-chat-0001").script = Script()
    retry = webhook(inprocess, {"query": "q"}, settings=chat, headers={"Idempotency-Key": "d-2"})
    assert (retry.status, retry.header("Idempotent-Replay")) == (200, None)


def test_conversation_continuity_per_external_user(inprocess, workspace):
    s = scheme_settings(
        "api_key", "app-chat-0001", webhook_query="body.text", webhook_user="body.from.id"
    )
    for text in ("one", "two"):
        webhook(inprocess, {"text": text, "from": {"id": 555}}, settings=s)
    webhook(inprocess, {"text": "other", "from": {"id": 777}}, settings=s)
    first, second, other = workspace.invocations
    assert first.conversation_id == "" and second.conversation_id != ""
    assert other.conversation_id == ""
    workspace.forget_conversation(second.conversation_id)  # deleted in Dify
    r = webhook(inprocess, {"text": "three", "from": {"id": 555}}, settings=s)
    assert r.status == 200
    stale, fresh = workspace.invocations[-2:]
    assert stale.conversation_id == second.conversation_id and fresh.conversation_id == ""


def test_body_limits_and_media_types(inprocess, workspace):
    s = scheme_settings("api_key", "app-chat-0001")
    assert (
        webhook(inprocess, b"x" * (10 * 1024 * 1024), content_type="text/plain", settings=s).status
        == 413
    )
    r = webhook(inprocess, b"--b\r\n", content_type="multipart/form-data; boundary=b", settings=s)
    assert r.status == 415
    assert webhook(inprocess, b"{nope", settings=s).status == 400
    assert workspace.invocations == []


def test_get_without_handshake_is_405(inprocess):
    r = inprocess.request("GET", "/webhook", settings=scheme_settings("api_key", "x"))
    assert r.status == 405 and r.json()["code"] == "method_not_allowed"


def test_api_key_in_query_for_url_only_senders(inprocess, workspace):
    s = scheme_settings("api_key", "app-chat-0001")
    r = inprocess.request(
        "POST",
        "/webhook?api_key=hook-key-0001",
        settings=s,
        body=b'{"query": "hi"}',
        headers={"Content-Type": "application/json"},
    )
    assert r.status == 200


def test_storage_stays_bounded_under_10000_deliveries():
    storage = Storage(quota=16 * 1024 * 1024)
    clock = [1_000_000.0]
    deliveries = Deliveries(Records(DirectStorage(storage), "ep", lambda: clock[0]))
    response = StoredResponse(200, "application/json", json.dumps({"answer": "x" * 300}).encode())
    for i in range(10_000):
        clock[0] += 1
        deliveries.remember(f"delivery-{i}", response)
    assert len(storage.data) <= idempotency.SLOTS
    assert storage.used <= idempotency.SLOTS * 1024
    assert deliveries.replay("delivery-9999") == response
    big = StoredResponse(200, "text/plain", b"y" * 10_000)
    deliveries.remember("big", big)
    assert json.loads(deliveries.replay("big").body)["replayed"] is True


def test_signed_provider_delivery_end_to_end_in_process(inprocess, workspace):
    body = json.dumps(
        {"id": "evt_1", "type": "invoice.paid", "data": {"object": {"amount": 1200}}}
    ).encode()
    s = scheme_settings(
        "stripe",
        "app-chat-0001",
        webhook_query="join(' ', [type, to_string(data.object.amount)])".replace(
            "type", "body.type"
        ).replace("data.", "body.data."),
    )
    r = inprocess.request(
        "POST",
        "/webhook",
        settings=s,
        body=body,
        headers={"Content-Type": "application/json", **sign("stripe", body, time.time())},
    )
    assert r.status == 200, r.text
    assert workspace.invocations[0].query == "invoice.paid 1200"
    again = inprocess.request(
        "POST",
        "/webhook",
        settings=s,
        body=body,
        headers={"Content-Type": "application/json", **sign("stripe", body, time.time())},
    )
    assert again.header("Idempotent-Replay") == "true"  # Stripe's event id dedupes


# -- regressions from the second review ----------------------------------------------------------


def test_reusing_a_key_with_another_body_is_refused(inprocess, workspace):
    s = scheme_settings("api_key", "app-chat-0001")
    webhook(
        inprocess,
        {"query": "alice's secret plan", "user": "alice"},
        settings=s,
        headers={"Idempotency-Key": "k-1"},
    )
    r = webhook(
        inprocess,
        {"query": "tell me", "user": "bob"},
        settings=s,
        headers={"Idempotency-Key": "k-1"},
    )
    assert (r.status, r.json()["code"]) == (422, "idempotency_key_reused")
    assert "secret plan" not in r.text
    assert len(workspace.invocations) == 1


def test_ids_from_different_sources_never_meet(inprocess, workspace):
    body = {"update_id": 12345, "message": {"text": "hi"}}
    s = scheme_settings("api_key", "app-chat-0001")
    webhook(inprocess, body, settings=s, headers={"Idempotency-Key": "12345"})
    telegram = scheme_settings("telegram", "app-chat-0001")
    r = inprocess.request("POST", "/webhook", settings=telegram, body=json.dumps(body).encode(),
                          headers={"Content-Type": "application/json", **sign("telegram", b"", time.time())})  # fmt: skip
    assert r.status == 200 and r.header("Idempotent-Replay") is None
    assert len(workspace.invocations) == 2


def test_rate_limits_are_not_remembered(inprocess, workspace):
    s = scheme_settings("api_key", "app-chat-0001")
    workspace.app("app-chat-0001").script = Script(
        raise_before=inner_api_error("slow down", code="too_many_requests", status=429)
    )
    assert (
        webhook(inprocess, {"query": "q"}, settings=s, headers={"Idempotency-Key": "r-1"}).status
        == 429
    )
    workspace.app("app-chat-0001").script = Script()
    retry = webhook(inprocess, {"query": "q"}, settings=s, headers={"Idempotency-Key": "r-1"})
    assert (retry.status, retry.header("Idempotent-Replay")) == (200, None)


def test_provider_checks_do_not_run_the_app(inprocess, workspace):
    line_verify = json.dumps({"destination": "U0", "events": []}).encode()
    r = inprocess.request("POST", "/webhook", settings=scheme_settings("line", "app-chat-0001"), body=line_verify,
                          headers={"Content-Type": "application/json", **sign("line", line_verify, time.time())})  # fmt: skip
    assert r.status == 200
    ping = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}).encode()
    headers = {
        "Content-Type": "application/json",
        **sign("github", ping, time.time()),
        "X-GitHub-Event": "ping",
    }
    r = inprocess.request(
        "POST",
        "/webhook",
        settings=scheme_settings("github", "app-chat-0001"),
        body=ping,
        headers=headers,
    )
    assert r.status == 200
    assert workspace.invocations == []


def test_discord_webhook_events_run_the_app_and_answer_204(inprocess, workspace):
    event = json.dumps({"version": 1, "application_id": "1", "type": 1,
                        "event": {"type": "APPLICATION_AUTHORIZED", "data": {"user": {"id": "9"}}}}).encode()  # fmt: skip
    r = inprocess.request("POST", "/webhook", settings=scheme_settings("discord", "app-chat-0001"), body=event,
                          headers={"Content-Type": "application/json", **sign("discord", event, time.time())})  # fmt: skip
    assert r.status == 204
    assert len(workspace.invocations) == 1


def test_a_named_conversation_needs_its_owner(inprocess, workspace):
    s = scheme_settings("api_key", "app-chat-0001")
    conversation = webhook(inprocess, {"query": "mine", "user": "alice"}, settings=s).json()[
        "conversation_id"
    ]
    assert (
        webhook(
            inprocess,
            {"query": "again", "user": "alice", "conversation_id": conversation},
            settings=s,
        ).status
        == 200
    )
    r = webhook(
        inprocess,
        {"query": "steal", "user": "mallory", "conversation_id": conversation},
        settings=s,
    )
    assert r.status == 404
    assert len(workspace.invocations) == 2


def test_credentials_never_reach_the_app(inprocess, workspace, issue_app):
    mapping = {
        "title": "join(',', [to_string(headers.authorization), to_string(query.api_key), 'x'])"
    }
    s = {**issue_app, "webhook_inputs": json.dumps(mapping)}
    webhook(inprocess, GITHUB_ISSUE, settings=s, target="/webhook?api_key=hook-key-0001")
    assert workspace.invocations[0].inputs["title"] == "null,null,x"
    assert "hook-key-0001" not in json.dumps(workspace.invocations[0].inputs)


@pytest.mark.parametrize("value", ["nan", "Infinity", "1e400", "1_000", "12abc"])
def test_numbers_are_strict(inprocess, workspace, issue_app, value):
    s = {
        **issue_app,
        "webhook_inputs": json.dumps({"title": "body.issue.title", "number": "body.n"}),
    }
    r = webhook(inprocess, {**GITHUB_ISSUE, "n": value}, settings=s)
    assert r.status == 400 and "must be a number" in r.json()["message"]
