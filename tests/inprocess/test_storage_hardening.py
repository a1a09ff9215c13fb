"""Issue #10 items 3, 4, 7 and the storage parts of 8, through the SDK's executor against the
emulated daemon storage (quota, write-before-check and all)."""

import json
import time
import uuid

import pytest
from conftest import CHAT_APP, SETTINGS
from signers import SECRET, sign
from signers import settings as scheme_settings

from bridge.storage import conversations, idempotency, transcripts
from bridge.storage.conversations import Conversations
from bridge.storage.records import Records
from bridge.storage.slots import StorageFull
from devkit.workspace import DirectStorage

AUTH = {"Authorization": "Bearer test-key", "Content-Type": "application/json"}
ENDPOINT = "endpoint-inprocess"


@pytest.fixture(autouse=True)
def _fresh_flights():
    idempotency.FLIGHTS.__init__(ttl=0)


def chat(inprocess, user, conversation="", mode="blocking"):
    body = {"query": "hi", "user": user, "conversation_id": conversation, "response_mode": mode}
    return inprocess.request(
        "POST", "/v1/chat-messages", settings=SETTINGS, headers=AUTH,
        body=json.dumps(body).encode(),
    )  # fmt: skip


def fill_every_bucket(workspace, owner="mallory"):
    """Another caller's traffic: every ownership bucket full of unexpired records."""
    store = Conversations(Records(DirectStorage(workspace.storage), ENDPOINT))
    full: set[str] = set()
    filled = []
    i = 0
    while len(full) < conversations.BUCKETS:
        item = str(uuid.UUID(int=i))
        i += 1
        bucket = store._store.bucket_of(item)
        if bucket in full:
            continue
        try:
            store.remember(item, owner)
            filled.append(item)
        except StorageFull:
            full.add(bucket)
    conversations.KNOWN.clear()
    return filled


# -- item 3: storage sized for the workspace; ownership never silently lost ------------------


def test_full_buckets_fail_a_new_conversation_cleanly_and_evict_no_owner(inprocess, workspace):
    alice = chat(inprocess, "alice").json()["conversation_id"]
    filled = fill_every_bucket(workspace)
    r = chat(inprocess, "bob")
    assert r.status == 503 and r.json()["code"] == "storage_full"
    assert "storage" in r.json()["message"] and "Traceback" not in r.text
    conversations.KNOWN.clear()
    assert chat(inprocess, "alice", alice).status == 200  # alice's owner record survived
    store = Conversations(Records(DirectStorage(workspace.storage), ENDPOINT))
    for item in filled[:: len(filled) // 50]:
        store.check(item, "mallory")  # and so did every other unexpired record


def test_full_buckets_end_a_stream_with_an_error_event(inprocess, workspace):
    fill_every_bucket(workspace)
    r = chat(inprocess, "bob", mode="streaming")
    assert r.status == 200
    frames = [json.loads(f[6:]) for f in r.text.split("\n\n") if f.startswith("data: ")]
    assert frames[-1]["event"] == "error" and frames[-1]["code"] == "storage_full"
    assert frames[-1]["status"] == 503


def test_a_full_quota_fails_new_conversations_and_keeps_old_ones(inprocess, workspace):
    alice = chat(inprocess, "alice").json()["conversation_id"]
    workspace.storage.quota = workspace.storage.used  # the workspace's quota is used up
    r = chat(inprocess, "bob")
    assert (r.status, r.json()["code"]) == (503, "storage_full")
    conversations.KNOWN.clear()
    assert chat(inprocess, "alice", alice).status == 200
    assert chat(inprocess, "carol", alice).status == 404


def test_a_webhook_conversation_that_cannot_be_recorded_fails_and_is_retried(inprocess, workspace):
    s = scheme_settings("api_key", CHAT_APP, webhook_query="body.text", webhook_user="body.from")
    key = {"Authorization": "Bearer hook-key-0001", "Content-Type": "application/json"}

    def deliver():
        return inprocess.request(
            "POST", "/webhook", settings=s, body=b'{"text": "hi", "from": "u-1"}',
            headers={**key, "Idempotency-Key": "d-1"},
        )  # fmt: skip

    workspace.storage.quota = 0
    r = deliver()
    assert (r.status, r.json()["code"]) == (503, "storage_full")
    workspace.storage.quota = 1 << 30
    retry = deliver()  # a 5xx is not remembered: the sender's retry runs and records it
    assert retry.status == 200 and retry.header("Idempotent-Replay") is None
    again = inprocess.request(
        "POST", "/webhook", settings=s, body=b'{"text": "more", "from": "u-1"}',
        headers=key,
    )  # fmt: skip
    assert again.status == 200
    assert workspace.invocations[-1].conversation_id == json.loads(retry.body)["conversation_id"]


# -- item 4: OpenAI continuation cannot be joined by guessing ----------------------------------


def completions(inprocess, messages, user=None):
    body = {"messages": messages, **({"user": user} if user else {})}
    return inprocess.request(
        "POST", "/v1/chat/completions", settings=SETTINGS, headers=AUTH,
        body=json.dumps(body).encode(),
    )  # fmt: skip


def say(text):
    return {"role": "user", "content": text}


def answered(text):
    return {"role": "assistant", "content": text}


def test_replaying_a_first_exchange_does_not_join_the_conversation(inprocess, workspace):
    first = completions(inprocess, [say("hi")], user="alice")
    conversation = first.header("X-Conversation-Id")
    greeting = first.json()["choices"][0]["message"]["content"]  # deterministic: guessable
    turn_two = [say("hi"), answered(greeting), say("my card is 4242")]
    second = completions(inprocess, turn_two, user="alice")
    assert workspace.invocations[-1].conversation_id == conversation
    # a second caller replays the guessable first exchange, even claiming alice's user
    replay = completions(
        inprocess, [say("hi"), answered(greeting), say("what's my card?")], "alice"
    )
    assert replay.status == 200
    assert workspace.invocations[-1].conversation_id == ""  # a new conversation
    assert replay.header("X-Conversation-Id") != conversation
    # alice's own next turn still continues hers
    answer = second.json()["choices"][0]["message"]["content"]
    completions(inprocess, [*turn_two, answered(answer), say("thanks")], user="alice")
    assert workspace.invocations[-1].conversation_id == conversation


def test_only_the_latest_state_of_a_conversation_continues_it(inprocess, workspace):
    first = completions(inprocess, [say("one")])
    conversation = first.header("X-Conversation-Id")
    history = [say("one"), answered(first.json()["choices"][0]["message"]["content"])]
    completions(inprocess, [*history, say("two")])
    assert workspace.invocations[-1].conversation_id == conversation
    completions(inprocess, [*history, say("two, again")])  # a regenerated or edited turn
    assert workspace.invocations[-1].conversation_id == ""  # forks: a new conversation


def test_transcript_keys_cannot_be_computed_without_the_endpoint_secret(inprocess, workspace):
    first = completions(inprocess, [say("hi")])
    turns = [("user", "hi"), ("assistant", first.json()["choices"][0]["message"]["content"])]
    unkeyed = transcripts.digest(turns, "")
    store = transcripts.Transcripts(Records(DirectStorage(workspace.storage), ENDPOINT))
    raw = b"".join(workspace.storage.data.values())
    assert store._store.tag(unkeyed).encode() not in raw
    assert store.conversation_for(turns, "") is None  # without the secret: nothing found
    keyed = transcripts.Transcripts(
        Records(DirectStorage(workspace.storage), ENDPOINT),
        transcripts.endpoint_secret(SETTINGS["api_key"]),
    )
    assert keyed.conversation_for(turns, "") == first.header("X-Conversation-Id")


# -- item 7: a provider's delivery id identifies the delivery, whatever the body ---------------

WORKFLOW = "app-workflow-0001"


def _provider_retry(scheme):
    """(first body, retry body, extra retry headers) as each provider retries a delivery."""
    if scheme == "line":
        event = {"type": "message", "webhookEventId": "01HX5Y2J8Q", "message": {"text": "hi"},
                 "deliveryContext": {"isRedelivery": False}}  # fmt: skip
        retry = {**event, "deliveryContext": {"isRedelivery": True}}
        return (
            {"destination": "U1", "events": [event]},
            {"destination": "U1", "events": [retry]},
            {},
        )
    if scheme == "slack":
        body = {"type": "event_callback", "event_id": "Ev0PV52K21", "event": {"text": "hi"}}
        return body, body, {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    if scheme == "stripe":
        body = {"id": "evt_1P", "type": "invoice.paid", "data": {"object": {"amount": 1}}}
        return body, {**body, "pending_webhooks": 1}, {}
    if scheme == "telegram":
        body = {"update_id": 912345, "message": {"text": "hi"}}
        return body, body, {}
    if scheme == "discord":
        body = {"id": "1234567890", "type": 2, "data": {"name": "ask"}}
        return body, body, {}
    body = {"action": "opened", "query": "hi", "attempt": 1}
    if scheme in ("github", "shopify"):
        return body, body, {}  # they resend the same signed body under the same header
    return body, {**body, "attempt": 2}, {}  # same delivery id, body differs


@pytest.mark.parametrize(
    "scheme",
    ["github", "gitlab", "slack", "stripe", "standard_webhooks", "shopify", "telegram", "line",
     "discord"],
)  # fmt: skip
def test_each_providers_retry_is_replayed_whatever_its_body(inprocess, workspace, scheme):
    first, retry, retry_headers = _provider_retry(scheme)
    settings = scheme_settings(scheme, WORKFLOW)
    delivery = str(uuid.uuid4())

    def deliver(body, extra, now):
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", **sign(scheme, data, now, delivery=delivery)}
        return inprocess.request(
            "POST", "/webhook", settings=settings, body=data, headers={**headers, **extra}
        )

    original = deliver(first, {}, time.time())
    assert original.status in (200, 204), original.text
    again = deliver(retry, retry_headers, time.time() + 60)  # later, re-signed
    assert (again.status, again.header("Idempotent-Replay")) == (original.status, "true")
    assert again.body == original.body
    assert len(workspace.invocations) == 1


def test_idempotency_key_binds_the_body_and_what_mappings_read(inprocess, workspace):
    settings = scheme_settings(
        "hmac_sha256", WORKFLOW,
        webhook_inputs=json.dumps({"query": "headers.\"x-tenant\""}),
    )  # fmt: skip
    body = b'{"event": "ping"}'

    def deliver(extra):
        headers = {"Content-Type": "application/json", **sign("hmac_sha256", body, time.time(),
                                                              delivery="order-7")}  # fmt: skip
        return inprocess.request(
            "POST", "/webhook", settings=settings, body=body, headers={**headers, **extra}
        )

    assert deliver({"X-Tenant": "acme"}).status == 200
    same = deliver({"X-Tenant": "acme", "X-Request-Id": "retry-2"})  # unread header changed
    assert same.header("Idempotent-Replay") == "true"
    other = deliver({"X-Tenant": "globex"})  # the mapping reads it: another request
    assert (other.status, other.json()["code"]) == (422, "idempotency_key_reused")
    assert len(workspace.invocations) == 1
    assert SECRET not in other.text


# -- item 8: timestamp-less schemes ------------------------------------------------------------


def test_meta_deliveries_are_identified_by_their_signed_body(inprocess, workspace):
    """Meta sends no delivery id and signs no timestamp: its retries — and a captured copy,
    while the record lives (24 h) — are answered from the record, not run again."""
    settings = scheme_settings("meta", WORKFLOW)

    def deliver(payload):
        data = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", **sign("meta", data, time.time())}
        return inprocess.request("POST", "/webhook", settings=settings, body=data, headers=headers)

    event = {"object": "page", "entry": [{"id": "1", "time": 1796196464, "query": "hi"}]}
    original, retry = deliver(event), deliver(event)
    assert original.status == retry.status == 200
    assert retry.header("Idempotent-Replay") == "true" and retry.body == original.body
    fresh = deliver({**event, "entry": [{"id": "1", "time": 1796196465, "query": "hi"}]})
    assert fresh.header("Idempotent-Replay") is None
    assert len(workspace.invocations) == 2
