"""Server-Sent Events framing and keep-alives.

Frames are bytes, one per event, so each can be yielded as its own chunk and relayed by
the daemon the moment it is produced. :func:`with_keepalive` interleaves a keep-alive
frame whenever the source is silent for ``interval`` seconds; the source is drained by
a helper started with :mod:`bridge.background` (a greenlet under the SDK's gevent patching),
so waiting never blocks other requests.
"""

from __future__ import annotations

import json
import math
import queue
import re
import secrets
import threading
import time
from collections.abc import Generator, Iterable

from bridge import background


def data_frame(obj: object) -> bytes:
    """``data: <json>\\n\\n`` — the frame of every Dify and OpenAI stream event.

    Compact UTF-8 JSON, as current Dify writes its stream (``orjson_dumps``) and as OpenAI
    does; Dify before its orjson switch wrote ``json.dumps`` spacing (verify per version).
    """
    return b"data: " + json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


def dify_frame(obj: object) -> bytes:
    """:func:`data_frame` as Dify writes it: ``orjson.dumps`` (orjson 3.11, Dify 1.15's lock).

    orjson writes the same bytes as compact ``json.dumps`` except for floats in exponent
    range: ``1.2e-05`` → ``0.000012``, ``1e-07`` → ``1e-7``, ``1e+16`` → ``1e16``. Only a
    frame whose text holds such a number (rare: tiny elapsed times) is written again, with
    those floats in orjson's form.
    """
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    if ("e-" in text or "e+" in text) and _EXPONENT.search(text):
        text = _with_orjson_floats(obj)
    return b"data: " + text.encode() + b"\n\n"


_EXPONENT = re.compile(r"e[-+][0-9]+[,\]}]")  # a number's exponent, then a delimiter


def orjson_float(value: float) -> str:
    """How orjson writes a finite float: Python's shortest digits, but decimals down to
    1e-5 and exponents without ``+`` or leading zeros."""
    text = repr(value)
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    power = int(exponent)
    if power == -5:  # repr switches to exponents below 1e-4, orjson below 1e-5
        sign = "-" if mantissa.startswith("-") else ""
        return f"{sign}0.0000{mantissa.lstrip('-').replace('.', '')}"
    return f"{mantissa}e{power}"


def _with_orjson_floats(obj: object) -> str:
    """``obj`` as compact JSON with every exponent-form float written as orjson writes it."""
    nonce = secrets.token_hex(8)
    numbers: dict[str, str] = {}

    def mark(value: object) -> object:
        if isinstance(value, float):
            if "e" in repr(value) and math.isfinite(value):
                key = f"\x00{nonce}{len(numbers)}\x00"
                numbers[json.dumps(key)] = orjson_float(value)
                return key
            return value
        if isinstance(value, dict):
            return {k: mark(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [mark(v) for v in value]
        return value

    text = json.dumps(mark(obj), ensure_ascii=False, separators=(",", ":"))
    for placeholder, number in numbers.items():
        text = text.replace(placeholder, number, 1)
    return text


def named_frame(name: str, obj: object) -> bytes:
    """``event: <name>\ndata: <json>\n\n`` — the frame of OpenAI Responses events."""
    return f"event: {name}\n".encode() + data_frame(obj)


def event_frame(name: str) -> bytes:
    return f"event: {name}\n\n".encode()


def comment_frame(text: str) -> bytes:
    return b"".join(b": " + line.encode() + b"\n" for line in text.splitlines() or [""]) + b"\n"


PING = event_frame("ping")  # Dify's keep-alive
KEEPALIVE_COMMENT = comment_frame("keepalive")  # OpenAI-safe keep-alive
DONE = b"data: [DONE]\n\n"


class _End:
    """Marks the end of the source (with the exception that ended it, if any)."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


def with_keepalive[T](
    source: Iterable[T], interval: float, keepalive: T
) -> Generator[T, None, None]:
    """Yield ``source``'s items as they arrive, and ``keepalive`` after each silence.

    An exception raised by ``source`` is re-raised here, in the consumer. When the consumer
    stops early (client gone), the helper stops after the item it is waiting for.

    The first item is handed over at once: the helper yields to the consumer before it asks
    ``source`` for more. Under gevent a queued item otherwise waits until the helper next
    waits — with an app whose events arrive together, after it has drained them all (~0.25 ms
    of time to first byte, issue #14). Later items flow without a switch per item, which
    measured slower.
    """
    items: queue.Queue[object] = queue.Queue()
    stop = threading.Event()

    def pump() -> None:
        try:
            first = True
            for item in source:
                items.put(item)
                if first:  # the consumer takes it now, before the source is asked for more
                    first = False
                    time.sleep(0)
                if stop.is_set():
                    break
        except Exception as exc:  # noqa: BLE001 - re-raised in the consumer
            items.put(_End(exc))
            return
        except BaseException:  # the helper was killed: the consumer gets a plain failure
            items.put(_End(RuntimeError("stream source stopped")))
            raise
        items.put(_End())

    background.start(pump, "sse-pump")
    try:
        while True:
            try:
                item = items.get(timeout=interval)
            except queue.Empty:
                yield keepalive
                continue
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item  # type: ignore[misc]
    finally:
        stop.set()
