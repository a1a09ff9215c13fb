"""Daemon round trips per route (issue #14), counted on the emulated workspace.

Every backwards invocation the plugin makes — app runs, ``fetch_app``, storage calls — is
recorded by the workspace, so these counts are exact and deterministic.
"""

import json
import uuid

import pytest
from conftest import CHAT_APP, SETTINGS
from signers import settings as scheme_settings

from bridge.protocols import webhook as webhook_module
from bridge.storage import conversations, idempotency, transcripts
from bridge.storage.records import Records
from devkit.workspace import DirectStorage

AUTH = {"Authorization": "Bearer test-key", "Content-Type": "application/json"}


class Counter:
    def __init__(self, workspace):
        self.workspace = workspace
        self.mark()

    def mark(self):
        ws = self.workspace
        self._at = (len(ws.invocations), len(ws.fetches), len(ws.storage.ops))

    def since(self):
        """(app runs, fetch_app calls, storage ops) since the last mark; marks again."""
        ws = self.workspace
        apps, fetches, ops = self._at
        counted = (len(ws.invocations) - apps, len(ws.fetches) - fetches, ws.storage.ops[ops:])
        self.mark()
        return counted


def post(inprocess, path, body, *, app_id=CHAT_APP, headers=AUTH, settings=None):
    settings = settings or {**SETTINGS, "app": {"app_id": app_id}}
    return inprocess.request(
        "POST", path, settings=settings, headers=headers, body=json.dumps(body).encode()
    )


@pytest.fixture(autouse=True)
def _fresh_flights():
    idempotency.FLIGHTS.__init__(ttl=0)


def every_bucket_exists(workspace, endpoint="endpoint-inprocess"):
    """A busy endpoint's storage: every bucket already written once (the steady state).

    A bucket's very first write costs one ``exist`` more: the daemon answers a failed read
    like a missing key, so "missing" is confirmed before anything is written over it.
    """
    records = Records(DirectStorage(workspace.storage), endpoint)
    for kind, buckets in ((conversations.KIND, conversations.BUCKETS),
                          (transcripts.KIND, transcripts.BUCKETS),
                          (webhook_module.USER_CONVERSATIONS, webhook_module.USER_CONVERSATION_BUCKETS)):  # fmt: skip
        for index in range(buckets):
            records.store(kind, f"b{index:05d}", {"r": []})
    workspace.storage.ops.clear()


@pytest.fixture(autouse=True)
def _busy(workspace):
    every_bucket_exists(workspace)


def test_the_first_write_of_a_bucket_confirms_it_is_missing(inprocess, workspace):
    workspace.storage.data.clear()
    count = Counter(workspace)
    assert post(inprocess, "/v1/chat-messages", {"query": "hi", "user": "u"}).status == 200
    assert count.since() == (1, 1, ["get", "exist", "set"])


@pytest.mark.parametrize("mode", ["blocking", "streaming"])
def test_chat_messages(inprocess, workspace, mode):
    count = Counter(workspace)
    first = post(
        inprocess, "/v1/chat-messages", {"query": "hi", "user": "u", "response_mode": mode}
    )
    assert first.status == 200
    assert count.since() == (1, 1, ["get", "set"])  # new conversation: owner read + written
    r = post(inprocess, "/v1/chat-messages", {"query": "new", "user": "u", "response_mode": mode})
    assert r.status == 200
    assert count.since() == (1, 0, ["get", "set"])  # fetch_app is cached
    if mode == "streaming":
        conversation = json.loads(first.text.split("\n\n")[0][6:])["conversation_id"]
    else:
        conversation = first.json()["conversation_id"]
    body = {"query": "again", "user": "u", "conversation_id": conversation, "response_mode": mode}
    assert post(inprocess, "/v1/chat-messages", body).status == 200
    assert count.since() == (1, 0, [])  # continued, owner known to this process
    conversations.KNOWN.clear()  # a process that has not seen it (restart, other instance)
    assert post(inprocess, "/v1/chat-messages", body).status == 200
    assert count.since() == (1, 0, ["get"])


@pytest.mark.parametrize(
    ("path", "app_id", "body"),
    [
        ("/v1/completion-messages", "app-completion-0001", {"inputs": {"query": "q"}}),
        ("/v1/workflows/run", "app-workflow-0001", {"inputs": {"query": "q"}}),
    ],
)
def test_completion_and_workflow_touch_no_storage(inprocess, workspace, path, app_id, body):
    count = Counter(workspace)
    for _ in range(2):
        assert post(inprocess, path, body, app_id=app_id).status == 200
    apps, fetches, ops = count.since()
    assert (apps, fetches, ops) == (2, 1, [])


def test_parameters_and_models_touch_no_storage(inprocess, workspace):
    count = Counter(workspace)
    settings = {**SETTINGS, "app": {"app_id": CHAT_APP}}
    for _ in range(2):
        assert (
            inprocess.request("GET", "/v1/parameters", settings=settings, headers=AUTH).status
            == 200
        )
        assert inprocess.request("GET", "/v1/models", settings=settings, headers=AUTH).status == 200
    assert count.since() == (0, 1, [])


def user(text):
    return {"role": "user", "content": text}


@pytest.mark.parametrize("stream", [False, True])
def test_openai_chat_completions(inprocess, workspace, stream):
    count = Counter(workspace)
    first = post(inprocess, "/v1/chat/completions", {"messages": [user("one")], "stream": stream})
    assert first.status == 200
    # owner of the new conversation (get + set) and its first transcript (get + set), the two
    # written side by side in their own buckets once the answer is in
    apps, fetches, storage = count.since()
    assert (apps, fetches, sorted(storage)) == (1, 1, ["get", "get", "set", "set"])
    if stream:
        frames = [json.loads(f[6:]) for f in first.text.split("\n\n") if f.startswith("data: {")]
        answer = "".join(f["choices"][0]["delta"].get("content", "") for f in frames)
    else:
        answer = first.json()["choices"][0]["message"]["content"]
    messages = [user("one"), {"role": "assistant", "content": answer}, user("two")]
    second = post(inprocess, "/v1/chat/completions", {"messages": messages, "stream": stream})
    assert workspace.invocations[-1].conversation_id == first.header("X-Conversation-Id")
    # continued from the history: one read finds it, one write advances it
    assert count.since() == (1, 0, ["get", "set"])
    assert second.status == 200


def webhook(inprocess, body, headers, settings):
    return inprocess.request(
        "POST", "/webhook", settings=settings, body=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **headers},
    )  # fmt: skip


def test_webhook_with_idempotency_key(inprocess, workspace):
    settings = scheme_settings("api_key", "app-workflow-0001")
    key = {"Authorization": "Bearer hook-key-0001", "Idempotency-Key": str(uuid.uuid4())}
    count = Counter(workspace)
    first = webhook(inprocess, {"inputs": {"query": "q"}}, key, settings)
    assert first.status == 200
    assert count.since() == (1, 1, ["get", "set"])  # one read misses, one write records
    again = webhook(inprocess, {"inputs": {"query": "q"}}, key, settings)
    assert again.header("Idempotent-Replay") == "true"
    assert count.since() == (0, 0, [])  # this process answered it: known
    idempotency.KNOWN.clear()
    again = webhook(inprocess, {"inputs": {"query": "q"}}, key, settings)
    assert again.header("Idempotent-Replay") == "true" and again.body == first.body
    assert count.since() == (0, 0, ["get"])  # replays: one read


def test_webhook_to_a_chat_app_records_the_conversation_owner(inprocess, workspace):
    settings = scheme_settings("api_key", CHAT_APP)
    key = {"Authorization": "Bearer hook-key-0001", "Idempotency-Key": str(uuid.uuid4())}
    count = Counter(workspace)
    assert webhook(inprocess, {"query": "q"}, key, settings).status == 200
    # delivery read, owner read + write (its conversation_id is in the answer), delivery write
    assert count.since() == (1, 1, ["get", "get", "set", "set"])


def test_webhook_without_delivery_id_touches_no_storage(inprocess, workspace):
    settings = scheme_settings("api_key", "app-workflow-0001")
    count = Counter(workspace)
    r = webhook(
        inprocess, {"inputs": {"query": "q"}}, {"Authorization": "Bearer hook-key-0001"}, settings
    )
    assert r.status == 200
    assert count.since() == (1, 1, [])


def test_webhook_user_conversations(inprocess, workspace):
    settings = scheme_settings(
        "api_key", CHAT_APP, webhook_query="body.text", webhook_user="body.from"
    )
    key = {"Authorization": "Bearer hook-key-0001"}
    count = Counter(workspace)
    assert webhook(inprocess, {"text": "hi", "from": "u-1"}, key, settings).status == 200
    # the user's bucket read before the run is reused to record their new conversation;
    # the owner record is its own get + set
    assert count.since() == (1, 1, ["get", "get", "set", "set"])
    assert webhook(inprocess, {"text": "more", "from": "u-1"}, key, settings).status == 200
    assert count.since() == (1, 0, ["get"])  # continued: the user's bucket read only
