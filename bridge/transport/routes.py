"""The routes this plugin serves, for the diagnostics page and the README.

A test keeps this catalogue equal to the endpoint YAMLs declared in the group file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    family: str
    summary: str


ROUTES: tuple[Route, ...] = (
    Route("GET", "/", "diagnostics", "This page: public URLs, setting checks and examples."),
    Route("POST", "/v1/chat-messages", "service-api", "Dify Service API: chat, agent, chatflow."),
    Route("POST", "/v1/completion-messages", "service-api", "Dify Service API: completion apps."),
    Route("POST", "/v1/workflows/run", "service-api", "Dify Service API: workflow apps."),
    Route("GET", "/v1/parameters", "service-api", "Dify Service API: the app's input form."),
    Route("POST", "/extension", "extension", "Dify API-based Extension: data tool, moderation."),
    Route("GET", "/v1/models", "openai", "OpenAI API: the model list (one model: this app)."),
    Route("POST", "/v1/chat/completions", "openai", "OpenAI API: chat completions, streamed."),
    Route("POST", "/v1/responses", "openai", "OpenAI Responses API: blocking or streamed."),
    Route("GET", "/v1/responses/<response_id>", "openai", "OpenAI Responses API: a stored one."),
    Route("POST", "/webhook", "webhook", "Verified webhooks (GitHub, Slack, Stripe…) → app runs."),
    Route("GET", "/webhook", "webhook", "Webhook subscription handshake (Meta hub.challenge)."),
)


def _pattern(template: str) -> re.Pattern[str]:
    """``/v1/responses/<response_id>`` matches one path segment in place of ``<…>``."""
    parts = re.split(r"<[^>]+>", template)
    return re.compile("[^/]+".join(re.escape(p) for p in parts) + r"\Z")


_PATTERNS = tuple((route, _pattern(route.path)) for route in ROUTES)


def allowed_methods(path: str) -> tuple[str, ...]:
    """The methods served on ``path`` (``HEAD`` with ``GET``), sorted; empty if none."""
    methods = {route.method for route, pattern in _PATTERNS if pattern.match(path)}
    if "GET" in methods:
        methods.add("HEAD")
    return tuple(sorted(methods))
