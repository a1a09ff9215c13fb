"""Content coding of kept bodies: which Accept-Encoding values admit gzip, and the gzip form."""

import gzip
import os

import pytest

from bridge.transport.encoding import GZIP_MIN_SIZE, Encoded, accepts_gzip

PAGE = (
    b"<!doctype html><title>App Bridge</title>" + b"<tr><td>setting</td><td>value</td></tr>" * 200
)


@pytest.mark.parametrize(
    ("value", "admitted"),
    [
        ("gzip", True),
        ("gzip, deflate, br, zstd", True),
        ("GZIP", True),  # codings are case-insensitive (RFC 9110 §8.4.1)
        ("deflate;q=0.5, gzip;q=0.001", True),
        ("*", True),
        ("br, *;q=0.1", True),
        ("", False),
        ("identity", False),
        ("deflate, br", False),
        ("gzip;q=0", False),
        ("gzip;q=0.000", False),
        ("gzip;q=0, *", False),
        ("*;q=0", False),
        ("gzipx", False),
    ],
)
def test_accepts_gzip(value, admitted):
    assert accepts_gzip(value) is admitted


def test_a_page_has_a_gzip_form_that_inflates_to_it_and_is_the_same_every_time():
    kept = Encoded.of(PAGE)
    assert kept.gzip is not None and gzip.decompress(kept.gzip) == PAGE
    assert Encoded.of(PAGE).gzip == kept.gzip  # no timestamp in the header: stable bytes
    assert kept.for_client("gzip, deflate") == (kept.gzip, "gzip")
    assert kept.for_client(None) == (PAGE, None)
    assert kept.for_client("") == (PAGE, None)
    assert kept.for_client("gzip;q=0") == (PAGE, None)


def test_small_or_incompressible_bodies_keep_one_form():
    small = Encoded.of(b"x" * (GZIP_MIN_SIZE - 1))
    noise = Encoded.of(os.urandom(4 * GZIP_MIN_SIZE))  # gzip would only add its framing
    for kept in (small, noise):
        assert kept.gzip is None
        assert kept.for_client("gzip") == (kept.identity, None)
