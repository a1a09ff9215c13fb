"""GitHub: a comment on the issue or pull request of the event.

Runs on ``issues`` (``opened``), ``pull_request`` (``opened``) and ``issue_comment``
(``created``, on issues and pull requests alike); the query is the title and body, or the
comment's body, and the conversation is per issue. Never runs on events whose sender is a bot
(``sender.type: Bot``, GitHub Apps included) or on the bridge's own comments, which end with
:data:`~bridge.replies.base.OWN_MARKER` (an HTML comment, invisible on GitHub), so a token of
a normal user cannot make it answer itself. ``reply_url``: the API base of GitHub Enterprise
Server (``https://ghe.example.com`` or ``…/api/v3``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from bridge.replies.base import (
    OWN_MARKER,
    Credentials,
    Outcome,
    Preset,
    ReplyFailed,
    Target,
    body_of,
    dig,
    header,
    ident,
    message,
    text,
)
from bridge.replies.http import PlatformChannel
from bridge.replies.text import split

LIMIT = 65536 - len(OWN_MARKER) - 2
API_VERSION = "2022-11-28"
RUN_ON = {"issues": "opened", "pull_request": "opened", "issue_comment": "created"}
_REPO = re.compile(r"[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}")
WHAT = "a GitHub token allowed to write issues and pull requests"


def _event(document: Mapping[str, Any]) -> str:
    return header(document, "x-github-event")


class GitHub(PlatformChannel):
    name = "github"
    setting_help = WHAT
    json_acks = True

    def skip(self, document: Mapping[str, Any]) -> str | None:  # noqa: PLR0911 - one guard each
        body = body_of(document)
        event = _event(document)
        if event not in RUN_ON:
            return f"GitHub {event or 'unknown'} events do not run the app"
        if body.get("action") != RUN_ON[event]:
            return f"{event} action {ident(body.get('action')) or 'missing'}"
        if dig(body, "sender", "type") == "Bot":
            return "event from a bot"
        if event == "issue_comment":
            if dig(body, "comment", "user", "type") == "Bot":
                return "comment from a bot"
            if OWN_MARKER in text(dig(body, "comment", "body")):
                return "the bridge's own comment"
        if self.target(document) is None:
            return "event without repository or issue number"
        return None

    def preset(self, document: Mapping[str, Any]) -> Preset | None:
        body = body_of(document)
        event = _event(document)
        if event == "issue_comment":
            query = text(dig(body, "comment", "body")).strip()
        else:
            item = body.get("pull_request" if event == "pull_request" else "issue")
            query = "\n\n".join(
                part for part in (text(dig(item, "title")), text(dig(item, "body"))) if part
            ).strip()
        target = self.target(document)
        key = f"{target.fields['repo']}#{target.fields['number']}" if target else None
        return Preset(query, key, {})

    def target(self, document: Mapping[str, Any]) -> Target | None:
        body = body_of(document)
        repo = ident(dig(body, "repository", "full_name"))
        item = body.get("pull_request") if _event(document) == "pull_request" else body.get("issue")
        number = dig(item, "number")
        if not _REPO.fullmatch(repo) or not isinstance(number, int) or isinstance(number, bool):
            return None
        return Target(self.name, {"repo": repo, "number": number})

    def send(self, target: Target, outcome: Outcome, credentials: Credentials) -> None:
        token = self.token(credentials)
        repo = ident(target.fields.get("repo"))
        number = target.fields.get("number")
        if not _REPO.fullmatch(repo) or not isinstance(number, int) or isinstance(number, bool):
            raise ReplyFailed("github reply target has no repository or number")
        api = self.http.api(self.name, credentials.url, "/api/v3")
        path = f"/repos/{repo}/issues/{number}/comments"
        headers = {
            "authorization": f"Bearer {token}",
            "accept": "application/vnd.github+json",
            "x-github-api-version": API_VERSION,
        }
        for part in split(message(outcome), LIMIT):
            self.http.call(api, "POST", path, {"body": f"{part}\n\n{OWN_MARKER}"}, headers)
