from bridge.storage.records import Records
from devkit.workspace import DirectStorage, Storage


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now


def make(endpoint_id="ep-1", storage=None, clock=None):
    storage = storage or Storage()
    return Records(DirectStorage(storage), endpoint_id, clock or Clock()), storage


def test_round_trip_and_missing():
    records, _ = make()
    assert records.get("conv", "user-1") is None
    records.put("conv", "user-1", {"conversation_id": "c1"}, ttl=60)
    assert records.get("conv", "user-1") == {"conversation_id": "c1"}
    records.delete("conv", "user-1")
    assert records.get("conv", "user-1") is None
    records.delete("conv", "user-1")  # deleting twice is harmless


def test_expiry_deletes_the_record():
    clock = Clock()
    records, storage = make(clock=clock)
    records.put("idem", "d1", "first response", ttl=10)
    clock.now += 9.9
    assert records.get("idem", "d1") == "first response"
    clock.now += 0.2
    assert records.get("idem", "d1") is None
    assert storage.data == {} and storage.used == 0


def test_endpoints_are_namespaced():
    storage = Storage()
    a, _ = make("endpoint-a", storage)
    b, _ = make("endpoint-b", storage)
    a.put("conv", "same-id", "A", ttl=60)
    assert b.get("conv", "same-id") is None
    assert all(key.startswith("ab/endpoint-a/conv/") for key in storage.data)


def test_keys_stay_short_and_clean_whatever_the_id():
    records, storage = make("../../etc")
    records.put("conv", "x" * 10_000 + "/../..", 1, ttl=60)
    (key,) = storage.data
    assert len(key) <= 256 and ".." not in key and "//" not in key


def test_rewriting_does_not_leak_quota():
    records, storage = make()
    for _ in range(50):
        records.put("conv", "u", {"c": "x" * 100}, ttl=60)
    assert storage.used == len(next(iter(storage.data.values())))


def test_corrupt_value_reads_as_missing_and_is_removed():
    records, storage = make()
    storage.data[records.key("conv", "u")] = b"not json"
    assert records.get("conv", "u") is None
    assert storage.data == {}
