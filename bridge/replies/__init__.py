"""Reply channels for two-way webhooks, selected by the ``webhook_reply`` setting (SPEC §6.1).

One module per platform behind :class:`~bridge.replies.base.Channel` (as ``verifiers/`` are):

============  ==================================================================  ==========
channel       reply call (API base from ``APP_BRIDGE_<PLATFORM>_API``)             per message
============  ==================================================================  ==========
``slack``     ``POST /chat.postMessage`` in the thread, mrkdwn, Bearer token       4000
``discord``   ``PATCH /webhooks/{app}/{token}/messages/@original``, follow-ups     2000
``telegram``  ``POST /bot{token}/sendMessage`` replying to the message             4096
``line``      ``POST /v2/bot/message/reply`` while the token is valid, else push   5 × 5000
``whatsapp``  ``POST /{version}/{phone_number_id}/messages`` (text)               4096
``github``    ``POST /repos/{repo}/issues/{number}/comments``                      65536
``gitlab``    ``POST /projects/{id}/{issues|merge_requests}/{iid}/notes``          100000
``callback``  ``POST reply_url``, signed per Standard Webhooks                     —
============  ==================================================================  ==========

``text`` holds the splitting and Markdown → mrkdwn helpers, ``http`` the platform calls over
:mod:`bridge.transport.outbound` (timeouts, retries honouring ``Retry-After``, SSRF guard).
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
from bridge.replies.callback import Callback
from bridge.replies.discord import Discord
from bridge.replies.github import GitHub
from bridge.replies.gitlab import GitLab
from bridge.replies.line import Line
from bridge.replies.slack import Slack
from bridge.replies.telegram import Telegram
from bridge.replies.whatsapp import WhatsApp

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

_REGISTRY: dict[str, Channel] = {
    ch.name: ch
    for ch in (Slack(), Discord(), Telegram(), Line(), WhatsApp(), GitHub(), GitLab(), Callback())
}

CHANNELS: tuple[str, ...] = tuple(_REGISTRY)


def channel(name: str) -> Channel:
    """The channel for a ``webhook_reply`` value; ``KeyError`` for ``response`` or unknown."""
    return _REGISTRY[name]
