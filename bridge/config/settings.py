"""Endpoint settings: typed, defensively coerced (SPEC §2).

Dify hands the plugin the decrypted settings on every request as a plain mapping. Values
are not always what the group YAML promises — booleans arrive as ``1``/``"true"``, selects
may be missing, strings carry stray whitespace, the app selector may be an object or a bare
id. :func:`parse_settings` never raises: it returns :class:`Settings` with every value
usable and a list of :class:`Problem` for what the admin has to fix. Routes call
:meth:`Settings.require` for the settings they depend on.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from bridge.errors import BridgeError, invalid_setting

VERIFICATION_SCHEMES = (
    "api_key",
    "hmac_sha256",
    "github",
    "gitlab",
    "slack",
    "stripe",
    "standard_webhooks",
    "discord",
    "shopify",
    "telegram",
    "line",
    "meta",
)
WEBHOOK_RESPONSES = ("dify", "outputs", "text")
# where a webhook's answer goes (SPEC §6.1); every value but "response" is a reply channel
WEBHOOK_REPLIES = (
    "response", "slack", "discord", "telegram", "line", "whatsapp", "github", "gitlab", "callback",
)  # fmt: skip
RUN_MODES = ("auto", "inline", "deferred")
MODERATION_MODES = ("keywords", "app", "keywords_and_app")
DEFAULT_MODEL_NAME = "app-bridge"
_SURROGATE = re.compile("[\ud800-\udfff]")

SECRET_SETTINGS = frozenset({"api_key", "webhook_secret", "webhook_token", "reply_token"})


@dataclass(frozen=True, slots=True)
class Problem:
    """A setting that is missing or unusable, with an admin-facing explanation."""

    name: str
    message: str


@dataclass(frozen=True, slots=True)
class Settings:
    api_key: str = ""
    app_id: str = ""
    query_variable: str = ""
    webhook_verification: str = "api_key"
    webhook_secret: str = ""
    webhook_token: str = ""  # URL credential (?token=, Meta's verify token) instead of api_key
    webhook_signature_header: str = ""
    webhook_inputs: str = ""
    webhook_query: str = ""
    webhook_user: str = ""
    webhook_response: str = "dify"
    moderation_keywords: tuple[str, ...] = ()
    moderation_preset_response: str = ""
    moderation_mode: str = "keywords"
    model_name: str = DEFAULT_MODEL_NAME
    cors_allowed_origins: tuple[str, ...] = ()
    selects: tuple[str, ...] = ()  # the select settings parsed (for require_selects)
    webhook_reply: str = "response"
    reply_token: str = ""
    reply_url: str = ""
    run_mode: str = "auto"
    self_url: str = ""
    problems: tuple[Problem, ...] = field(default=())

    @property
    def deferred(self) -> bool:
        """Whether a webhook delivery is acknowledged first and run in a continuation."""
        if self.run_mode == "auto":
            return self.webhook_reply != "response"
        return self.run_mode == "deferred"

    def problem(self, name: str) -> Problem | None:
        if not self.problems:  # the usual case: asked for several times per request
            return None
        return next((p for p in self.problems if p.name == name), None)

    def require(self, *names: str) -> None:
        """Raise a :class:`BridgeError` naming the first of ``names`` that is unusable."""
        if not self.problems:
            return
        for name in names:
            found = self.problem(name)
            if found is not None:
                raise invalid_setting(found.name, found.message)

    def require_selects(self) -> None:
        """Raise ``invalid_setting`` for the first select setting outside its options."""
        self.require(*self.selects)


def coerce_bool(value: object, default: bool = False) -> bool:
    """Booleans as Dify may store them: ``True``, ``1``, ``"true"``, ``"1"``, ``"yes"``…"""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        text = value.strip().lower()
        if text in {"true", "1", "yes", "on"}:
            return True
        if text in {"false", "0", "no", "off", ""}:
            return False
    return default


def _text(raw: Mapping, name: str) -> str:
    value = raw.get(name)
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool | int | float):
        return str(value)
    return ""


APP_NOT_SET = "is not set: choose the workspace app to expose."
APP_NOT_SELECTOR = (
    'is not an app selector (expected {"app_id": "…"}): choose the app again in the '
    "endpoint settings."
)


def _app_id(value: object) -> tuple[str, str]:
    """``(app_id, problem)``: the selector arrives as ``{"app_id": …}``; a bare id or the
    selector as JSON text are tolerated, anything else is named as not an app selector."""
    if isinstance(value, str):
        text = value.strip()
        if text and not text.startswith(("{", "[", '"')):
            return text, ""
        try:
            value = json.loads(text) if text else None
        except (ValueError, RecursionError):
            return "", APP_NOT_SELECTOR
    if isinstance(value, Mapping):
        value = value.get("app_id")
    elif value is not None:
        return "", APP_NOT_SELECTOR
    if value is None or value == "":
        return "", APP_NOT_SET
    if isinstance(value, str) and value.strip() and value.strip().isprintable():
        return value.strip(), ""
    return "", APP_NOT_SELECTOR


def _split(text: str, separators: str) -> tuple[str, ...]:
    for sep in separators[1:]:
        text = text.replace(sep, separators[0])
    return tuple(part.strip() for part in text.split(separators[0]) if part.strip())


class _Collector:
    def __init__(self, raw: Mapping) -> None:
        self.raw = raw
        self.problems: list[Problem] = []
        self.selects: list[str] = []

    def text(self, name: str) -> str:
        """The stripped text; NUL and lone surrogates (which no response can carry) are
        dropped/replaced and reported as a problem naming the setting. A secret holding them
        is unusable as a whole: it reads as unset, so checks fail closed."""
        value = _text(self.raw, name)
        if "\x00" in value or (not value.isascii() and _SURROGATE.search(value)):
            if all(p.name != name for p in self.problems):
                self.problems.append(
                    Problem(name, "contains a NUL or an invalid (surrogate) character: retype it.")
                )
            if name in SECRET_SETTINGS:
                return ""
            value = value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
        return value

    def select(self, name: str, options: tuple[str, ...]) -> str:
        """A select setting (first option = default). A value outside ``options`` is a
        problem that :meth:`Settings.require_selects` turns into ``invalid_setting``: routes
        never run with a guessed scheme or mode. Declaring a select here is all it takes."""
        self.selects.append(name)
        raw = self.raw.get(name)
        value = self.text(name).lower()
        if raw is not None and not isinstance(raw, str | bool | int | float):
            self.problems.append(Problem(name, f"must be one of: {', '.join(options)}."))
            return options[0]
        if not value:
            return options[0]
        if value not in options:
            self.problems.append(Problem(name, f"must be one of: {', '.join(options)}."))
            return options[0]
        return value

    def require_text(self, name: str, message: str) -> str:
        value = self.text(name)
        if not value:
            self.problems.append(Problem(name, message))
        return value

    def json_object(self, name: str) -> str:
        value = self.text(name)
        if not value:
            return ""
        try:
            parsed = json.loads(value)
        except ValueError:
            self.problems.append(Problem(name, "is not valid JSON."))
            return value
        if not isinstance(parsed, dict) or not all(isinstance(v, str) for v in parsed.values()):
            self.problems.append(
                Problem(
                    name, 'must be a JSON object of input name to expression, e.g. {"x": "body.x"}.'
                )
            )
        return value


PARSED_SETTINGS_KEPT = 64  # distinct settings remembered (endpoints of this process)
_PLAIN = frozenset({str, int, float, bool, type(None), dict, list})  # what JSON decodes to


def parse_settings(raw: Mapping | None) -> Settings:
    """Coerce Dify's settings mapping into :class:`Settings`; never raises.

    Dify sends an endpoint's settings with every request: settings that decode from JSON are
    parsed once (keyed by their JSON text, the least recently used of
    :data:`PARSED_SETTINGS_KEPT` forgotten first) — :class:`Settings` is immutable, so every
    request of the endpoint shares one. Anything else is parsed every time."""
    return parse_settings_and_text(raw)[0]


def parse_settings_and_text(raw: Mapping | None) -> tuple[Settings, str | None]:
    """:func:`parse_settings`, and the JSON text it recognised the settings by (None when
    they are not plain JSON values): what else is cached by the settings can use it."""
    key = _settings_key(raw)
    return (_parse(raw) if key is None else _parsed(key)), key


@functools.lru_cache(maxsize=PARSED_SETTINGS_KEPT)
def _parsed(text: str) -> Settings:
    return _parse(json.loads(text))  # plain JSON values: the same mapping again


def _settings_key(raw: object) -> str | None:
    """The JSON text of a settings dict of plain values, or None. Nested values only matter
    through the app selector's ``app_id`` text, which any ``str`` reads alike."""
    if type(raw) is not dict or any(
        type(name) is not str or type(value) not in _PLAIN for name, value in raw.items()
    ):
        return None
    try:  # json.dumps's own defaults use its cached C encoder: ~4 µs, against ~9 with separators
        return json.dumps(raw)
    except (TypeError, ValueError, RecursionError):
        return None


def _parse(raw: Mapping | None) -> Settings:
    c = _Collector(raw if isinstance(raw, Mapping) else {})
    api_key = c.require_text("api_key", "is not set: every request is refused until it is.")
    app_id, app_problem = _app_id(c.raw.get("app"))
    if app_problem:
        c.problems.append(Problem("app", app_problem))
    verification = c.select("webhook_verification", VERIFICATION_SCHEMES)
    secret = c.text("webhook_secret")
    if verification != "api_key" and not secret:
        c.problems.append(
            Problem("webhook_secret", f"is required for webhook_verification '{verification}'.")
        )
    header = c.text("webhook_signature_header")
    if verification == "hmac_sha256" and not header:
        c.problems.append(
            Problem(
                "webhook_signature_header", "is required for webhook_verification 'hmac_sha256'."
            )
        )
    return Settings(
        api_key=api_key,
        app_id=app_id,
        query_variable=c.text("query_variable"),
        webhook_verification=verification,
        webhook_secret=secret,
        webhook_token=c.text("webhook_token"),
        webhook_signature_header=header,
        webhook_inputs=c.json_object("webhook_inputs"),
        webhook_query=c.text("webhook_query"),
        webhook_user=c.text("webhook_user"),
        webhook_response=c.select("webhook_response", WEBHOOK_RESPONSES),
        moderation_keywords=_split(c.text("moderation_keywords"), "\n,"),
        moderation_preset_response=c.text("moderation_preset_response"),
        moderation_mode=c.select("moderation_mode", MODERATION_MODES),
        model_name=c.text("model_name") or DEFAULT_MODEL_NAME,
        cors_allowed_origins=tuple(
            o.rstrip("/") for o in _split(c.text("cors_allowed_origins"), ",\n ")
        ),
        **_reply_settings(c),
        selects=tuple(c.selects),  # after every c.select() above
        problems=tuple(c.problems),
    )


_NO_TOKEN_NEEDED = frozenset({"response", "discord"})


def _reply_settings(c: _Collector) -> dict[str, str]:
    """``webhook_reply``, ``reply_token``, ``reply_url``, ``run_mode``, ``self_url`` (§6.1)."""
    reply = c.select("webhook_reply", WEBHOOK_REPLIES)
    token = c.text("reply_token")
    url = c.text("reply_url")
    run_mode = c.select("run_mode", RUN_MODES)
    self_url = c.text("self_url").rstrip("/")
    if reply not in _NO_TOKEN_NEEDED and not token:
        c.problems.append(Problem("reply_token", f"is required for webhook_reply '{reply}'."))
    if reply == "callback" and not url:
        c.problems.append(Problem("reply_url", "is required for webhook_reply 'callback'."))
    for name, value in (("reply_url", url), ("self_url", self_url)):
        if value and not value.lower().startswith(("http://", "https://")):
            c.problems.append(Problem(name, "must be an http:// or https:// URL."))
    if run_mode == "deferred" and reply == "response":
        c.problems.append(
            Problem(
                "run_mode",
                "'deferred' needs a webhook_reply other than 'response': "
                "a background run has no HTTP response to answer in.",
            )
        )
    return {
        "webhook_reply": reply,
        "reply_token": token,
        "reply_url": url,
        "run_mode": run_mode,
        "self_url": self_url,
    }


__all__ = ["BridgeError", "Problem", "Settings", "coerce_bool", "parse_settings"]
