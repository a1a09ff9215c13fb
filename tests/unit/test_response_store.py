"""The Responses API's storage: one record per conversation, owner by digest, bounded."""

from bridge.storage import response_store
from bridge.storage.records import Records
from bridge.storage.response_store import (
    CHAIN,
    MAX_RECORD_BYTES,
    SLOTS,
    TTL,
    ResponseStore,
    is_response_id,
    new_id,
)
from devkit.workspace import DirectStorage, Storage


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now


def make(endpoint="ep"):
    clock, storage = Clock(), Storage()
    return ResponseStore(Records(DirectStorage(storage), endpoint, clock)), storage, clock


def test_ids_are_random_and_recognised():
    ids = {new_id() for _ in range(100)}
    assert len(ids) == 100 and all(is_response_id(i) for i in ids)
    assert not is_response_id("resp_xyz") and not is_response_id("msg_" + "0" * 48)


def test_find_checks_endpoint_and_user_and_reads_once():
    store, storage, _ = make()
    rid = new_id()
    store.save(rid, "alice", "conv-1", {"x": "kept"})
    storage.ops.clear()
    found = store.find(rid, "alice")
    assert (found.conversation_id, found.body) == ("conv-1", {"x": "kept"})
    assert storage.ops == ["get"]
    assert store.find(rid, "bob") is None
    assert store.find(rid, None) is not None  # GET without a user
    assert store.find(new_id(), "alice") is None
    other = ResponseStore(Records(DirectStorage(storage), "other-endpoint"))
    assert other.find(rid, "alice") is None


def test_user_ids_and_text_of_ids_never_reach_storage():
    store, storage, _ = make()
    rid = new_id()
    store.save(rid, "alice@example.com", "conv-1", None)
    blob = b"".join(storage.data.values()) + "".join(storage.data).encode()
    assert b"alice" not in blob and rid.encode() not in blob and rid[5:].encode() not in blob


def test_records_expire():
    store, _, clock = make()
    rid = new_id()
    store.save(rid, "", "c", None)
    clock.now += TTL + 1
    assert store.find(rid, "") is None


def test_objects_over_the_record_limit_keep_only_continuity():
    store, storage, _ = make()
    rid = new_id()
    store.save(rid, "", "c", {"x": "y" * MAX_RECORD_BYTES})
    found = store.find(rid, "")
    assert (found.conversation_id, found.body, found.too_large) == ("c", None, True)
    assert max(len(v) for v in storage.data.values()) < MAX_RECORD_BYTES + 200


def test_storage_stays_bounded(monkeypatch):
    monkeypatch.setattr(response_store, "SLOTS", 32)
    store, storage, clock = make()
    for i in range(2000):
        clock.now += 1
        store.save(new_id(), f"user-{i}", f"conv-{i}", {"x": "text"})
    assert len(storage.data) <= 32
    assert storage.used == sum(len(v) for v in storage.data.values())  # nothing leaked
    assert SLOTS * MAX_RECORD_BYTES <= 1024 * 1024


def test_a_conversation_keeps_one_record_and_its_chain():
    store, storage, _ = make()
    first = new_id()
    store.save(first, "alice", "conv", {"x": "1"})
    previous = store.find(first, "alice")
    second = new_id(first)
    assert second[5:9] == first[5:9] and second != first
    storage.ops.clear()
    store.save(second, "alice", "conv", {"x": "2"}, previous=previous)
    assert storage.ops == ["del", "set"]  # the slot was just read: no check needed
    assert len(storage.data) == 1
    old, new = store.find(first, "alice"), store.find(second, "alice")
    assert (old.conversation_id, old.latest, old.body) == ("conv", False, None)
    assert (new.latest, new.body) == (True, {"x": "2"})
    assert store.find(second, "bob") is None


def test_the_chain_is_capped():
    store, _, _ = make()
    ids = [new_id()]
    store.save(ids[0], "", "conv", None)
    for _ in range(CHAIN + 5):
        ids.append(new_id(ids[-1]))
        store.save(ids[-1], "", "conv", None, previous=store.find(ids[-2], ""))
    assert store.find(ids[0], "") is None
    assert store.find(ids[-CHAIN], "") is not None


def test_turns_of_other_conversations_never_evict_a_conversation(monkeypatch):
    monkeypatch.setattr(response_store, "SLOTS", 64)
    store, _, _ = make()
    mine = new_id()
    store.save(mine, "me", "conv-mine", None)
    others = []
    while len(others) < 20:  # other conversations that do not share my slot
        candidate = new_id()
        if candidate[5:9] != mine[5:9] and int(candidate[5:9], 16) % 64 != int(mine[5:9], 16) % 64:
            store.save(candidate, "x", f"conv-{len(others)}", None)
            others.append(candidate)
    for _ in range(50):  # many turns of those conversations
        for index, latest in enumerate(others):
            following = new_id(latest)
            store.save(following, "x", f"conv-{index}", None, previous=store.find(latest, "x"))
            others[index] = following
    assert store.find(mine, "me").conversation_id == "conv-mine"
