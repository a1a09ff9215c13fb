import time

import pytest

from bridge.protocols.moderation import (
    first_keyword,
    keyword_matcher,
    strings_in,
    verdict_from_answer,
    verdict_from_outputs,
)
from bridge.singleflight import SingleFlight


def test_keywords_match_case_insensitively_as_substrings():
    keywords = ("Bomb", "credit card")
    assert first_keyword(keywords, ["nothing here", "my CREDIT CARD number"]) == "CREDIT CARD"
    assert first_keyword(keywords, ["bombastic"]) == "bomb"
    assert first_keyword(keywords, ["fine"]) is None
    assert first_keyword((), ["anything"]) is None


def test_matcher_is_compiled_once_per_list():
    assert keyword_matcher(("a", "b")) is keyword_matcher(("a", "b"))


def test_regex_metacharacters_are_literal():
    assert first_keyword(("a.b", "(x)"), ["axb"]) is None
    assert first_keyword(("a.b", "(x)"), ["see (x)"]) == "(x)"


def test_strings_in_nested_inputs():
    assert strings_in({"a": "x", "b": [1, "y", {"c": "z"}], "d": None}) == ["x", "y", "z"]


def test_judge_outputs():
    v = verdict_from_outputs({"flagged": "true", "preset_response": "No."})
    assert (v.flagged, v.preset_response, v.overrides) == (True, "No.", None)
    v = verdict_from_outputs({"flagged": True, "text": "clean", "inputs": '{"k": "v"}'})
    assert v.overrides == {"text": "clean", "inputs": {"k": "v"}}
    assert verdict_from_outputs({"flagged": "false"}).flagged is False
    assert verdict_from_outputs({}).flagged is False


def test_judge_answers():
    assert verdict_from_answer('{"flagged": true, "preset_response": "x"}').preset_response == "x"
    assert verdict_from_answer("Flagged: violent content").flagged
    assert verdict_from_answer("yes.").flagged
    assert not verdict_from_answer("This is fine").flagged
    assert not verdict_from_answer("").flagged


def test_single_flight_shares_one_execution_and_remembers_it():
    import threading

    flights = SingleFlight(ttl=60)
    calls = []

    def slow():
        calls.append(1)
        time.sleep(0.2)
        return "result"

    results = []
    threads = [
        threading.Thread(target=lambda: results.append(flights.run("k", slow))) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["result"] * 4 and len(calls) == 1
    assert flights.run("k", slow) == "result" and len(calls) == 1


def test_single_flight_does_not_remember_failures():
    flights = SingleFlight(ttl=60)
    attempts = []

    def flaky():
        attempts.append(1)
        if len(attempts) == 1:
            raise ValueError("first fails")
        return "ok"

    with pytest.raises(ValueError, match="first fails"):
        flights.run("k", flaky)
    assert flights.run("k", flaky) == "ok"
