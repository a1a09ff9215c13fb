"""The bucket layout of the bridge's records (issues #10 item 3, #14), against the emulated
daemon storage and its quota."""

import pytest

from bridge.protocols import webhook
from bridge.storage import conversations, idempotency, response_store, transcripts
from bridge.storage.conversations import Conversations
from bridge.storage.records import Records, namespace
from bridge.storage.slots import BucketStore, StorageFull
from devkit.workspace import DirectStorage, Storage


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now


def make(*, buckets=8, capacity=4, ttl=100.0, evict=False, quota=16 * 1024 * 1024):
    clock = Clock()
    # charge_overwrites=False: the daemon since 0.5.7 charges an overwrite's size difference
    storage = Storage(quota, charge_overwrites=False)
    records = Records(DirectStorage(storage), "ep", clock)
    store = BucketStore(records, "k", buckets=buckets, capacity=capacity, ttl=ttl, evict=evict)
    return store, storage, clock


def same_bucket(store, count, prefix="id"):
    groups = {}
    for i in range(10_000):
        item = f"{prefix}-{i}"
        group = groups.setdefault(store.bucket_of(item), [])
        group.append(item)
        if len(group) == count:
            return group
    raise AssertionError("no bucket filled")


def test_round_trip_update_and_delete():
    store, storage, _ = make()
    store.put("a", {"x": 1})
    store.put("a", {"x": 2})
    assert store.get("a") == {"x": 2}
    store.delete("a")
    assert store.get("a") is None
    assert storage.data == {}  # an empty bucket is deleted, not kept


def test_one_get_per_lookup_and_one_get_one_set_per_change():
    store, storage, _ = make(buckets=1)
    store.put("a", 1)
    assert storage.ops == ["get", "exist", "set"]  # a bucket's first write confirms "missing"
    storage.ops.clear()
    store.put("b", 2)
    store.put("a", 3)
    assert storage.ops == ["get", "set", "get", "set"]
    storage.ops.clear()
    assert (store.get("a"), store.get("missing")) == (3, None)
    assert storage.ops == ["get", "get"]


def test_a_failed_read_is_never_written_over():
    """The daemon answers any failed read with its missing-key text (task.go)."""
    store, storage, _ = make()
    ids = same_bucket(store, 2)
    store.put(ids[0], "kept")

    class FlakyRead(DirectStorage):
        def get(self, key):
            raise Exception("load data failed, please check if the key is correct")

    flaky = BucketStore(
        Records(FlakyRead(storage), "ep", Clock()), "k", buckets=8, capacity=4, ttl=100.0
    )
    assert flaky.get(ids[0]) is None  # reads as missing…
    with pytest.raises(StorageFull):
        flaky.put(ids[1], "newcomer")  # …but is not overwritten
    assert store.get(ids[0]) == "kept"


def test_a_full_bucket_never_evicts_an_unexpired_record():
    store, storage, clock = make(capacity=4)
    ids = same_bucket(store, 5)
    for item in ids[:4]:
        clock.now += 1
        store.put(item, item)
    before = dict(storage.data)
    with pytest.raises(StorageFull):
        store.put(ids[4], "newcomer")
    assert storage.data == before
    assert [store.get(item) for item in ids[:4]] == ids[:4]


def test_an_expired_record_makes_room():
    store, _, clock = make(capacity=4, ttl=100)
    ids = same_bucket(store, 5)
    for item in ids[:4]:
        store.put(item, item)
    clock.now += 101
    store.put(ids[4], "newcomer")
    assert store.get(ids[4]) == "newcomer"
    assert all(store.get(item) is None for item in ids[:4])


def test_evicting_stores_replace_the_record_that_expires_first():
    store, _, clock = make(capacity=3, evict=True)
    ids = same_bucket(store, 4)
    for item in ids[:3]:
        clock.now += 1
        store.put(item, item)
    store.put(ids[3], "newcomer")
    assert store.get(ids[0]) is None
    assert [store.get(item) for item in ids[1:]] == [ids[1], ids[2], "newcomer"]


def test_storage_stays_bounded_and_exact_under_10000_ids():
    store, storage, clock = make(buckets=16, capacity=8, evict=True)
    for i in range(10_000):
        clock.now += 0.5
        store.put(f"delivery-{i}", {"status": 200})
    assert len(storage.data) <= 16
    assert storage.used == sum(len(v) for v in storage.data.values())
    assert store.get("delivery-9999") == {"status": 200}


def test_a_refused_write_raises_and_keeps_what_was_stored():
    store, storage, _ = make(quota=10_000)
    ids = same_bucket(store, 2)
    store.put(ids[0], "first")
    storage.quota = storage.used  # full: any growth is refused
    with pytest.raises(StorageFull):
        store.put(ids[1], "x" * 100)
    assert store.get(ids[0]) == "first"


def test_a_storage_outage_is_not_read_as_an_empty_bucket():
    store, storage, _ = make()
    store.put("a", 1)

    class Down(DirectStorage):
        def get(self, key):
            raise Exception("connection refused")

    records = Records(Down(storage), "ep", Clock())
    broken = BucketStore(records, "k", buckets=8, capacity=4, ttl=100.0)
    with pytest.raises(Exception, match="connection refused"):
        broken.put("b", 2)
    assert store.get("a") == 1


def test_records_hold_no_id_in_clear():
    store, storage, _ = make()
    store.put("U024BE7LH@slack", "c")
    (raw,) = storage.data.values()
    assert b"U024BE7LH" not in raw


# -- the namespace ---------------------------------------------------------------------------


def test_namespace_is_injective():
    ids = ["ep-1", "ep_1", "ep.1", "ep/1", "ep 1", "é", "a" * 64, "a" * 65, "a" * 66]
    spaces = [namespace(i) for i in ids]
    assert len(set(spaces)) == len(ids)
    assert namespace("5f0c7bd8-4e4b-4a57-9d7a-0c1e3f5a2b11") == (
        "5f0c7bd8-4e4b-4a57-9d7a-0c1e3f5a2b11"
    )
    assert all(len(s) <= 65 and "/" not in s and ".." not in s for s in spaces)


def test_endpoints_whose_ids_differ_only_in_punctuation_do_not_share_records():
    storage = Storage()
    a = Conversations(Records(DirectStorage(storage), "ep.1"))
    b = Conversations(Records(DirectStorage(storage), "ep/1"))
    a.remember("9b2c3d4e-0000-4000-8000-000000000001", "alice")
    conversations.KNOWN.clear()
    with pytest.raises(Exception, match="Conversation Not Exists"):
        b.check("9b2c3d4e-0000-4000-8000-000000000001", "alice")


# -- sizing: the workspace, not one endpoint ---------------------------------------------------

ENDPOINTS = 40  # busy endpoints the manifest's quota holds at their worst case
DAEMON_DEFAULT_CAP = 100 * 1024 * 1024  # PERSISTENCE_STORAGE_MAX_SIZE default


def _worst_bucket_store(store, make_value):
    """Fill every bucket of ``store`` to capacity with the largest records it keeps."""
    filled = {}
    i = 0
    while len(filled) < store._buckets * store._capacity:
        item = f"worst-{i}"
        i += 1
        bucket = store.bucket_of(item)
        if sum(1 for b in filled.values() if b == bucket) >= store._capacity:
            continue
        filled[item] = bucket
        store.put(item, make_value(item))


def test_one_endpoint_at_its_worst_fits_its_share_of_the_quota():
    import yaml

    from devkit.daemon import REPO_ROOT

    quota = yaml.safe_load((REPO_ROOT / "manifest.yaml").read_text())["resource"]["permission"][
        "storage"
    ]["size"]
    assert quota <= 1024**3
    storage = Storage(quota, charge_overwrites=False)
    records = Records(DirectStorage(storage), "5f0c7bd8-4e4b-4a57-9d7a-0c1e3f5a2b11")
    uuid = "5f0c7bd8-4e4b-4a57-9d7a-0c1e3f5a2b11"
    _worst_bucket_store(Conversations(records)._store, lambda item: "f" * 24)
    _worst_bucket_store(webhook.user_conversations(records), lambda item: uuid)
    oai = BucketStore(
        records, transcripts.KIND, buckets=transcripts.BUCKETS,
        capacity=transcripts.CAPACITY, ttl=transcripts.TTL, evict=True,
    )  # fmt: skip
    _worst_bucket_store(oai, lambda item: uuid)
    deliveries = idempotency.Deliveries(records)
    big = idempotency.StoredResponse(200, "application/json", b"x" * idempotency.MAX_BODY, "f" * 32)
    for i in range(idempotency.SLOTS * 8):
        deliveries.remember(f"github:{i}", big)
    responses = response_store.ResponseStore(records)
    for slot in range(response_store.SLOTS):  # every slot holding its largest kept record
        rid = response_store.ID_PREFIX + f"{slot:04x}" + "a" * 44
        previous = None
        for _ in range(response_store.CHAIN):  # a long chain of ids makes the record largest
            follow = response_store.new_id(rid)
            responses.save(follow, "u", uuid, {"x": "y" * 64}, previous=previous)
            previous = responses.find(follow, "u")
        body = {"x": "y" * (response_store.MAX_RECORD_BYTES - 900)}
        responses.save(response_store.new_id(rid), "u", uuid, body, previous=previous)
    per_endpoint = storage.used
    print(f"worst case per endpoint: {per_endpoint} bytes")
    assert len([k for k in storage.data if "/idem/" in k]) <= idempotency.SLOTS
    assert per_endpoint * ENDPOINTS <= min(quota, DAEMON_DEFAULT_CAP)


def test_on_daemons_before_0_5_7_a_leaking_quota_fails_cleanly_and_loses_no_owner():
    """Daemons before 0.5.7 charge every overwrite in full: rewriting buckets uses the quota
    up early — new records are then refused (503 upstream), never an existing one lost."""
    storage = Storage(60_000, charge_overwrites=True)
    owners = Conversations(Records(DirectStorage(storage), "ep"))
    kept, refused = [], None
    for i in range(10_000):
        item = f"00000000-0000-4000-8000-{i:012d}"
        try:
            owners.remember(item, f"user-{i}")
        except StorageFull as exc:
            refused = exc
            break
        kept.append(item)
    conversations.KNOWN.clear()
    assert refused is not None and len(kept) > 50
    for i, item in enumerate(kept):
        owners.check(item, f"user-{i}")


def test_a_read_reused_for_a_later_write_never_loses_a_write_made_in_between():
    """OpenAI turns reuse the bucket read that found the conversation when they write its
    next state; another request's write to that bucket meanwhile must survive."""
    storage = Storage(charge_overwrites=False)
    records = Records(DirectStorage(storage), "ep", Clock())
    history = [("user", "one"), ("assistant", "answer one")]
    first = transcripts.Transcripts(records, b"secret")
    first.remember(history, "", "conv-1")
    request = transcripts.Transcripts(records, b"secret")
    assert request.conversation_for(history, "") == "conv-1"  # reads the bucket
    bucket = request._bucket(history, "")
    other = request._store
    other.update(bucket, lambda rows: rows.with_record("f" * 20, "conv-2", other.expiry()))
    storage.ops.clear()
    request.remember([*history, ("user", "two"), ("assistant", "a2")], "", "conv-1",
                     replaces=history)  # fmt: skip
    assert storage.ops == ["get", "set"]  # the stale read was not reused
    assert other.read(bucket).find("f" * 20).value == "conv-2"
    storage.ops.clear()
    again = transcripts.Transcripts(records, b"secret")
    turns = [*history, ("user", "two"), ("assistant", "a2")]
    assert again.conversation_for(turns, "") == "conv-1"
    again.remember([*turns, ("user", "3"), ("assistant", "a3")], "", "conv-1", replaces=turns)
    assert storage.ops == ["get", "set"]  # a current read is reused: no second get
