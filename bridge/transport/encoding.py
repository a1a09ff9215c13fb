"""Content coding of kept bodies: gzip for a client that accepts it (RFC 9110 §8.4, §12.5.3).

Only a body that is built once and kept (the diagnostics page, ~13 KB of HTML) is compressed,
and its gzip form is made once with it: a request then pays for reading ``Accept-Encoding``
alone (parsed once per distinct value), and the daemon carries a quarter of the bytes — hex
in a JSON line, as it carries every body. Bodies built per request stay as they are:
compressing them would cost each request what it saves.

A response that can come either way says so (``Vary: Accept-Encoding``), so that no cache
hands the gzip form to a client that did not ask for it.
"""

from __future__ import annotations

import functools
import gzip
from dataclasses import dataclass

from werkzeug.http import parse_accept_header

GZIP_MIN_SIZE = 1024  # below this the gzip framing (18 B) and a client's inflate outweigh it
GZIP_LEVEL = 6  # zlib's default: a 13 KB page in ~0.3 ms, once
ACCEPT_VALUES_KEPT = 64  # distinct Accept-Encoding values remembered (browsers send a few)


@functools.lru_cache(maxsize=ACCEPT_VALUES_KEPT)
def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` value admits gzip: listed, or matched by ``*``, with a
    quality above 0 (an explicit ``gzip;q=0`` refuses it even beside ``*``)."""
    return parse_accept_header(accept_encoding).quality("gzip") > 0


@dataclass(frozen=True, slots=True)
class Encoded:
    """A kept body and its gzip form (None when the body is too small to gain from it)."""

    identity: bytes
    gzip: bytes | None

    @classmethod
    def of(cls, body: bytes) -> Encoded:
        if len(body) < GZIP_MIN_SIZE:
            return cls(body, None)
        packed = gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)  # mtime 0: the same
        return cls(body, packed if len(packed) < len(body) else None)  # bytes every time

    def for_client(self, accept_encoding: str | None) -> tuple[bytes, str | None]:
        """The body to send to a client that sent ``accept_encoding``, and its coding."""
        if self.gzip is not None and accept_encoding and accepts_gzip(accept_encoding):
            return self.gzip, "gzip"
        return self.identity, None
