"""The ``GET /`` diagnostics page: public URLs, setting checks, copy-paste examples.

Rendered from plain data so it is testable without HTTP. It never shows a secret; the app
id and the non-secret setting values appear only to a caller that presents the endpoint's
API key.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from html import escape

from werkzeug import Response

from bridge.auth import is_authenticated
from bridge.call import Call
from bridge.continuation import FALLBACKS, Fallback
from bridge.public_url import endpoint_base_url
from bridge.responses import html_response
from bridge.routes import ROUTES, Route
from bridge.settings import SECRET_SETTINGS, Settings

SETTING_NAMES = (
    "api_key",
    "app",
    "query_variable",
    "webhook_verification",
    "webhook_secret",
    "webhook_signature_header",
    "webhook_inputs",
    "webhook_query",
    "webhook_user",
    "webhook_response",
    "webhook_reply",
    "reply_token",
    "reply_url",
    "run_mode",
    "self_url",
    "moderation_keywords",
    "moderation_preset_response",
    "moderation_mode",
    "model_name",
    "cors_allowed_origins",
)

KEY_PLACEHOLDER = "$APP_BRIDGE_KEY"


@dataclass(frozen=True, slots=True)
class SettingStatus:
    name: str
    state: str  # "ok" | "not set" | "problem"
    detail: str


def setting_statuses(settings: Settings, raw: dict, *, reveal: bool) -> list[SettingStatus]:
    """One row per setting; values only when ``reveal`` and never for secrets."""
    rows = []
    for name in SETTING_NAMES:
        problem = settings.problem(name)
        present = bool(raw.get(name)) if name != "app" else bool(settings.app_id)
        if problem is not None:
            rows.append(SettingStatus(name, "problem", problem.message))
        elif not present:
            rows.append(SettingStatus(name, "not set", "optional; default applies"))
        elif name in SECRET_SETTINGS or not reveal:
            rows.append(SettingStatus(name, "ok", "set"))
        else:
            rows.append(SettingStatus(name, "ok", _shown_value(settings, raw, name)))
    return rows


def _shown_value(settings: Settings, raw: dict, name: str) -> str:
    if name == "app":
        return f"app_id {settings.app_id}"
    value = raw.get(name)
    return value.strip() if isinstance(value, str) else str(value)


def route_url(base: str | None, route: Route) -> str:
    return f"{base or '<endpoint URL>'}{route.path if route.path != '/' else '/'}"


def examples(base: str | None) -> dict[str, str]:
    v1 = f"{base or 'https://<dify-host>/e/<hook_id>'}/v1"
    auth = f'-H "Authorization: Bearer {KEY_PLACEHOLDER}" -H "Content-Type: application/json"'
    return {
        "curl": (
            "# chat, agent or chatflow app\n"
            f"curl -s {v1}/chat-messages {auth} \\\n"
            """  -d '{"query": "Hello", "inputs": {}, "user": "me"}'\n"""
            "# workflow app\n"
            f"curl -s {v1}/workflows/run {auth} \\\n"
            """  -d '{"inputs": {}, "user": "me", "response_mode": "streaming"}'"""
        ),
        "python": (
            "import os\n"
            "from dify_client import ChatClient  # pip install dify-client\n\n"
            'client = ChatClient(os.environ["APP_BRIDGE_KEY"])\n'
            f'client.base_url = "{v1}"\n'
            'print(client.create_chat_message(inputs={}, query="Hello", user="me").json())'
        ),
    }


_STYLE = (
    "body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
    "h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}"
    "table{border-collapse:collapse;width:100%}"
    "td,th{border-bottom:1px solid #d0d7de;padding:.35rem .5rem;text-align:left;vertical-align:top}"
    "code,pre{font:13px ui-monospace,monospace}"
    "pre{background:#f6f8fa;padding:.75rem;overflow:auto;border-radius:6px}"
    ".ok{color:#1a7f37}.problem{color:#cf222e;font-weight:600}.muted{color:#656d76}"
)


def two_way_note(settings: Settings, fallback: Fallback | None) -> str:
    """The two-way status: where answers go, and why the last deferred run ran inline."""
    if settings.webhook_reply == "response":
        return ""
    mode = "in the background (continuation)" if settings.deferred else "inside the request"
    reply = escape(settings.webhook_reply)
    text = f"<p>Webhook answers go to <code>{reply}</code>, run {mode}.</p>"
    if fallback is not None:
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(fallback.at))
        text += (
            f'<p class="problem">The last background run fell back to running inline '
            f"({escape(when)}): {escape(fallback.reason)}. Check <code>self_url</code>.</p>"
        )
    return text


def render_page(
    *,
    base: str | None,
    settings: Settings,
    raw_settings: dict,
    authenticated: bool,
    fallback: Fallback | None = None,
) -> str:
    """The whole HTML page, every dynamic value escaped."""
    rows = setting_statuses(settings, raw_settings, reveal=authenticated)
    problems = [r for r in rows if r.state == "problem"]
    route_rows = "".join(
        f"<tr><td>{escape(r.method)}</td><td><code>{escape(route_url(base, r))}</code></td>"
        f"<td>{escape(r.summary)}</td></tr>"
        for r in ROUTES
    )
    setting_rows = "".join(
        f'<tr><td><code>{escape(r.name)}</code></td><td class="{r.state.replace(" ", "-")}">'
        f"{escape(r.state)}</td><td>{escape(r.detail)}</td></tr>"
        for r in rows
    )
    summary = (
        f'<p class="problem">{len(problems)} setting(s) need attention before this endpoint '
        "works.</p>"
        if problems
        else '<p class="ok">All required settings are present.</p>'
    )
    auth_note = (
        '<p class="ok">You presented this endpoint\'s API key: values are shown.</p>'
        if authenticated
        else '<p class="muted">Send the endpoint\'s API key (<code>Authorization: Bearer …</code>) '
        "to see the selected app and non-secret values.</p>"
    )
    base_text = escape(base) if base else "unknown (no Dify-Hook-Url header)"
    ex = examples(base)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>App Bridge endpoint</title><style>{_STYLE}</style></head><body>"
        "<h1>App Bridge endpoint</h1>"
        f"<p>Public base URL: <code>{base_text}</code></p>{summary}{auth_note}"
        f"{two_way_note(settings, fallback)}"
        f"<h2>Routes</h2><table><tr><th>Method</th><th>URL</th><th>Purpose</th></tr>{route_rows}</table>"
        "<h2>Settings</h2><table><tr><th>Setting</th><th>State</th><th>Detail</th></tr>"
        f"{setting_rows}</table>"
        "<h2>Examples</h2>"
        f"<p>Put the endpoint's API key in <code>APP_BRIDGE_KEY</code>, then:</p>"
        f"<pre>export APP_BRIDGE_KEY=…\n{escape(ex['curl'])}</pre>"
        f"<pre>{escape(ex['python'])}</pre>"
        "</body></html>"
    )


def page(call: Call) -> Response:
    """``GET /``: the page for this endpoint, as the caller reaches it."""
    html = render_page(
        base=endpoint_base_url(call.headers, "/"),
        settings=call.settings,
        raw_settings=dict(call.raw_settings),
        authenticated=is_authenticated(call.settings, call.headers),
        fallback=FALLBACKS.last(call.endpoint_id),
    )
    return html_response(html)
