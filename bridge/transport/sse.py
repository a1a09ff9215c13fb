"""Server-Sent Events framing and keep-alives.

Frames are bytes, one per event, so each can be yielded as its own chunk and relayed by
the daemon the moment it is produced. :func:`with_keepalive` interleaves a keep-alive
frame whenever the source is silent for ``interval`` seconds; the source is drained on a
helper thread (a greenlet under the SDK's gevent patching), so waiting never blocks other
requests.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Generator, Iterable


def data_frame(obj: object) -> bytes:
    """``data: <json>\\n\\n`` — the frame of every Dify and OpenAI stream event.

    Compact UTF-8 JSON, as current Dify writes its stream (``orjson_dumps``) and as OpenAI
    does; Dify before its orjson switch wrote ``json.dumps`` spacing (verify per version).
    """
    return b"data: " + json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


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
    """
    items: queue.Queue[object] = queue.Queue()
    stop = threading.Event()

    def pump() -> None:
        try:
            for item in source:
                items.put(item)
                if stop.is_set():
                    break
        except Exception as exc:  # noqa: BLE001 - re-raised in the consumer
            items.put(_End(exc))
            return
        except BaseException:  # the helper was killed: the consumer gets a plain failure
            items.put(_End(RuntimeError("stream source stopped")))
            raise
        items.put(_End())

    threading.Thread(target=pump, name="sse-pump", daemon=True).start()
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
