"""GitLab: a note on the issue or merge request of the event.

Runs on issue and merge request hooks (``object_attributes.action: open``) and on note hooks
for issues and merge requests (new notes; system notes never); the query is the title and
description, or the note, and the conversation is per issue / merge request. Never runs on
events of bot users (``user.bot``, or project / group access-token bots named
``project_<id>_bot…`` / ``group_<id>_bot…``) or on the bridge's own notes, which end with
:data:`~bridge.replies.base.OWN_MARKER`. ``reply_url``: the API base of a self-managed GitLab
(``https://gitlab.example.com`` or ``…/api/v4``).
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
    ident,
    message,
    text,
)
from bridge.replies.http import PlatformChannel
from bridge.replies.text import split

LIMIT = 100_000  # notes may hold 1 000 000 characters; long answers read better split
KINDS = {"issue": "issues", "merge_request": "merge_requests"}
NOTEABLE = {"Issue": "issue", "MergeRequest": "merge_request"}
_BOT_NAME = re.compile(r"(project|group)_[0-9]+_bot")
WHAT = "a GitLab access token with the api scope"


def _item(body: Mapping[str, Any]) -> tuple[str, Mapping[str, Any] | None]:
    """("issue" | "merge_request" | "", the issue / MR object the event is about)."""
    kind = text(body.get("object_kind"))
    if kind in KINDS:
        attributes = body.get("object_attributes")
        return kind, attributes if isinstance(attributes, Mapping) else None
    if kind == "note":
        noted = NOTEABLE.get(text(dig(body, "object_attributes", "noteable_type")), "")
        item = body.get(noted) if noted else None
        return noted, item if isinstance(item, Mapping) else None
    return "", None


class GitLab(PlatformChannel):
    name = "gitlab"
    setting_help = WHAT
    json_acks = True

    def skip(self, document: Mapping[str, Any]) -> str | None:  # noqa: PLR0911 - one guard each
        body = body_of(document)
        kind = text(body.get("object_kind"))
        attributes = body.get("object_attributes")
        if kind not in (*KINDS, "note") or not isinstance(attributes, Mapping):
            return f"GitLab {kind or 'unknown'} events do not run the app"
        user = body.get("user")
        if dig(user, "bot") is True or _BOT_NAME.match(text(dig(user, "username"))):
            return "event from a bot"
        if kind in KINDS and attributes.get("action") != "open":
            return f"{kind} action {ident(attributes.get('action')) or 'missing'}"
        if kind == "note":
            if attributes.get("system"):
                return "system note"
            if attributes.get("action") not in (None, "create"):
                return f"note action {ident(attributes.get('action'))}"
            if OWN_MARKER in text(attributes.get("note")):
                return "the bridge's own note"
        if self.target(document) is None:
            return "note on something other than an issue or merge request"
        return None

    def preset(self, document: Mapping[str, Any]) -> Preset | None:
        body = body_of(document)
        _, item = _item(body)
        if body.get("object_kind") == "note":
            query = text(dig(body, "object_attributes", "note")).strip()
        else:
            parts = (text(dig(item, "title")), text(dig(item, "description")))
            query = "\n\n".join(part for part in parts if part).strip()
        target = self.target(document)
        key = None
        if target:
            fields = target.fields
            key = f"{fields['project_id']}:{fields['kind']}:{fields['iid']}"
        return Preset(query, key, {})

    def target(self, document: Mapping[str, Any]) -> Target | None:
        body = body_of(document)
        kind, item = _item(body)
        project = dig(body, "project", "id")
        iid = dig(item, "iid")
        if not kind or not _number(project) or not _number(iid):
            return None
        return Target(self.name, {"project_id": project, "kind": KINDS[kind], "iid": iid})

    def send(self, target: Target, outcome: Outcome, credentials: Credentials) -> None:
        token = self.token(credentials)
        project, kind, iid = (target.fields.get(k) for k in ("project_id", "kind", "iid"))
        if not _number(project) or kind not in KINDS.values() or not _number(iid):
            raise ReplyFailed("gitlab reply target has no project, kind or iid")
        api = self.http.api(self.name, credentials.url, "/api/v4")
        path = f"/projects/{project}/{kind}/{iid}/notes"
        headers = {"private-token": token}
        for part in split(message(outcome), LIMIT):
            self.http.call(api, "POST", path, {"body": f"{part}\n\n{OWN_MARKER}"}, headers)


def _number(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0
