"""bridge.storage.transcripts.AnswerDigest: the transcript digest of a streamed answer, never held."""

import random

from bridge.storage.transcripts import AnswerDigest, digest

ALPHABET = [" ", "\n", "\t", "\x0b", "\u3000", "a", "é", '"', "\\", "\x01", "\u2028", "😀"]


def test_equals_the_digest_of_the_whole_transcript():
    rnd = random.Random(20261202)

    def text(n):
        return "".join(rnd.choice(ALPHABET) for _ in range(rnd.randint(0, n)))

    for _ in range(2000):
        turns = [(rnd.choice(["user", "assistant", "system"]), text(8)) for _ in range(3)]
        pieces = [text(5) for _ in range(rnd.randint(0, 6))]
        streamed = AnswerDigest(turns, "u")
        for piece in pieces:
            streamed.feed(piece)
        assert streamed.hexdigest() == digest([*turns, ("assistant", "".join(pieces))], "u")


def test_whitespace_waits_only_while_bounded():
    streamed = AnswerDigest([("user", "hi")], "")
    streamed.feed("answer")
    streamed.feed(" " * AnswerDigest.MAX_PENDING_SPACE)
    assert streamed.hexdigest() == digest([("user", "hi"), ("assistant", "answer")], "")
    streamed.feed(" ")
    assert streamed.hexdigest() is None  # not remembered: the next turn starts afresh


def test_text_that_cannot_be_encoded_is_not_remembered():
    streamed = AnswerDigest([("user", "hi")], "")
    streamed.feed("a\ud800")
    assert streamed.hexdigest() is None
    assert AnswerDigest([("user", "\udfff")], "").hexdigest() is None


def test_a_whole_answer_is_digested_a_slice_at_a_time():
    answer = ("é \n" * (AnswerDigest.SLICE // 2))[: AnswerDigest.SLICE * 2 + 5] + "  "
    streamed = AnswerDigest([("user", "hi")], "u")
    streamed.feed(answer)
    assert streamed.hexdigest() == digest([("user", "hi"), ("assistant", answer)], "u")
