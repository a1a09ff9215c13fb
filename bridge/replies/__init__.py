"""Reply channels for two-way webhooks, selected by the ``webhook_reply`` setting (SPEC §6.1).

One module per platform behind :class:`~bridge.replies.base.Channel` (as ``verifiers/`` are).
"""

from __future__ import annotations

from bridge.replies.base import (
    Ack,
    Channel,
    Credentials,
    Outcome,
    Preset,
    ReplyFailed,
    Target,
)

__all__ = [
    "CHANNELS",
    "Ack",
    "Channel",
    "Credentials",
    "Outcome",
    "Preset",
    "ReplyFailed",
    "Target",
    "channel",
]

_REGISTRY: dict[str, Channel] = {}

CHANNELS: tuple[str, ...] = tuple(_REGISTRY)


def channel(name: str) -> Channel:
    """The channel for a ``webhook_reply`` value; ``KeyError`` for ``response`` or unknown."""
    return _REGISTRY[name]
