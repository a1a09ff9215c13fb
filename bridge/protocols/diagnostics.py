"""The ``GET /`` diagnostics page: what this endpoint serves and how to set it up.

Rendered from plain data (:func:`page_model`) so it is testable without HTTP:

- the app's mode once a run has shown it (Dify tells a plugin nothing about an app before it
  runs, and never its name), and only the routes that work for that mode;
- every setting with its effective value or its default — values only to a caller that
  presents the endpoint's API key, secrets never;
- the setup guide of the selected platform (:mod:`bridge.protocols.guides`) with the exact URL
  to paste;
- examples per face that work as copied (filled with the app's required inputs in the keyed
  view), and a key field: the browser fetches this page again with the key in an
  ``Authorization`` header and swaps in the keyed view; "Try it" buttons send the examples
  the same way. The key never enters a URL, the page, or storage.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from html import escape
from typing import Any

from werkzeug import Response

from bridge.app.gateway import AppKind, input_variables, kind_of_mode
from bridge.call import Call
from bridge.config.auth import is_authenticated
from bridge.config.settings import DEFAULT_MODEL_NAME, SECRET_SETTINGS, Settings
from bridge.protocols.continuation import FALLBACKS, Fallback
from bridge.protocols.guides import Guide, guide_for
from bridge.transport.encoding import Encoded
from bridge.transport.public_url import endpoint_base_url
from bridge.transport.responses import html_response
from bridge.transport.routes import ROUTES, Route

# Every setting of SPEC §2, with what applies when it is left empty.
SETTING_DEFAULTS: tuple[tuple[str, str], ...] = (
    ("api_key", "required"),
    ("app", "required"),
    ("query_variable", "query (when the app declares it)"),
    ("webhook_verification", "api_key"),
    ("webhook_secret", "none (required unless webhook_verification is api_key)"),
    ("webhook_token", "none (the URL credential and Meta's verify token are the api_key)"),
    ("webhook_signature_header", "none (required for hmac_sha256)"),
    ("webhook_inputs", "none: a JSON body's inputs are used as Dify callers send them"),
    ("webhook_query", "none: a JSON body's query (or the platform preset)"),
    ("webhook_user", "none: a JSON body's user (or the platform preset)"),
    ("webhook_response", "dify"),
    ("webhook_reply", "response"),
    ("reply_token", "none"),
    ("reply_url", "none (the platform's public API)"),
    ("run_mode", "auto (deferred when webhook_reply is a platform, else inline)"),
    ("self_url", "http://127.0.0.1:$SERVER_PORT/e/<hook_id> (the daemon's own listener)"),
    ("moderation_keywords", "none (keyword moderation flags nothing)"),
    ("moderation_preset_response", "none"),
    ("moderation_mode", "keywords"),
    ("model_name", "app-bridge"),
    ("cors_allowed_origins", "none (no CORS headers)"),
)
SETTING_NAMES = tuple(name for name, _ in SETTING_DEFAULTS)
KEY_PLACEHOLDER = "$APP_BRIDGE_KEY"
BASE_PLACEHOLDER = "https://<dify-host>/e/<hook_id>"
EXAMPLE_USER = "diagnostics"

# Service-API routes that serve one kind of app only; every other route serves all.
_ROUTE_KIND = {
    "/v1/chat-messages": AppKind.CHAT,
    "/v1/completion-messages": AppKind.COMPLETION,
    "/v1/workflows/run": AppKind.WORKFLOW,
}


@dataclass(frozen=True, slots=True)
class SettingRow:
    name: str
    state: str  # "set" | "default" | "problem"
    value: str  # the value (keyed view), "set (…)" when not shown, or the default that applies


# What a caller without the key may read about a problem: never which scheme or mode is
# configured (a problem's message can name it), only that the setting needs attention.
HIDDEN_PROBLEM = "needs attention (present the API key to see why)"
PUBLIC_PROBLEMS = frozenset({"api_key"})  # "is not set" is all it can say


@dataclass(frozen=True, slots=True)
class Example:
    id: str
    face: str
    title: str
    method: str
    path: str
    body: dict[str, Any] | None = None
    note: str = ""

    def curl(self, base: str) -> str:
        url = f"{base}{self.path}"
        lines = [f"curl -s {'-X ' + self.method + ' ' if self.method != 'GET' else ''}{url}"]
        lines.append(f'-H "Authorization: Bearer {KEY_PLACEHOLDER}"')
        if self.body is not None:
            payload = json.dumps(self.body).replace("'", "'\\''")
            lines.append("-H 'Content-Type: application/json'")
            lines.append(f"-d '{payload}'")
        return " \\\n  ".join(lines)


@dataclass
class PageModel:
    base: str | None
    authenticated: bool
    app_id: str
    mode: str | None
    routes: list[Route]
    settings: list[SettingRow]
    problems: list[SettingRow]
    guide: Guide | None  # None: the public view of a keyed endpoint
    examples: list[Example]
    notices: list[str] = field(default_factory=list)


def routes_for(mode: str | None, verification: str) -> list[Route]:
    """The routes that work for an app of ``mode`` (all app kinds while it is unknown)."""
    kind = kind_of_mode(mode) if mode else None
    shown = []
    for route in ROUTES:
        wanted = _ROUTE_KIND.get(route.path)
        if kind is not None and wanted is not None and wanted is not kind:
            continue
        if route.method == "GET" and route.path == "/webhook" and verification != "meta":
            continue  # only Meta's subscription handshake is served on GET
        shown.append(route)
    return shown


def setting_rows(
    settings: Settings, raw: Mapping[str, Any], *, reveal: bool, explain: bool | None = None
) -> list[SettingRow]:
    """One row per setting: its problem, its value (keyed view, never secrets) or default.

    A problem's message can name the configured scheme or mode, so without ``explain``
    (default: ``reveal``) it only says that the setting needs attention."""
    explain = reveal if explain is None else explain
    rows = []
    for name, default in SETTING_DEFAULTS:
        problem = settings.problem(name)
        value = raw.get(name)
        present = bool(settings.app_id) if name == "app" else _present(value)
        if problem is not None:
            shown = problem.message if explain or name in PUBLIC_PROBLEMS else HIDDEN_PROBLEM
            rows.append(SettingRow(name, "problem", shown))
        elif not present:
            rows.append(SettingRow(name, "default", default))
        elif name in SECRET_SETTINGS:
            rows.append(SettingRow(name, "set", "set (secret, never shown)"))
        elif not reveal:
            rows.append(SettingRow(name, "set", "set (value shown with the API key)"))
        elif name == "app":
            rows.append(SettingRow(name, "set", f"app_id {settings.app_id}"))
        else:
            rows.append(SettingRow(name, "set", str(value).strip()))
    return rows


def _present(value: object) -> bool:
    return value is not None and str(value).strip() != "" and value != {}


def example_inputs(parameters: Mapping[str, Any] | None, query_variable: str) -> dict[str, Any]:
    """Values for the app's required inputs (its default, first option, 1, or "example")."""
    inputs: dict[str, Any] = {}
    for control in input_variables(parameters or {}):
        name = str(control.get("variable") or "")
        if not name or not control.get("required") or name == query_variable:
            continue
        options = control.get("options") or []
        if control.get("default") not in (None, ""):
            inputs[name] = control["default"]
        elif options:
            inputs[name] = options[0]
        elif control.get("type") == "number":
            inputs[name] = 1
        else:
            inputs[name] = "example"
    return inputs


def examples_for(
    mode: str | None,
    settings: Settings,
    parameters: Mapping[str, Any] | None,
    *,
    reveal: bool = False,
) -> list[Example]:
    """Examples per face for this app; with ``parameters`` they carry its required inputs.

    Without ``reveal`` no setting value appears (the OpenAI model is the default name, which
    the facade accepts like any other)."""
    query_var = settings.query_variable or "query"
    inputs = example_inputs(parameters, query_var)
    kind = kind_of_mode(mode) if mode else None
    hello = {"role": "user", "content": "Hello"}
    found: list[Example] = []
    blocking = {"user": EXAMPLE_USER, "response_mode": "blocking"}
    if kind in (None, AppKind.CHAT):
        found.append(
            Example(
                "service-chat",
                "Dify Service API",
                "Chat message (chat, agent and chatflow apps)",
                "POST",
                "/v1/chat-messages",
                {"query": "Hello", "inputs": inputs, **blocking},
            )
        )
    if kind is AppKind.COMPLETION:
        found.append(
            Example(
                "service-completion",
                "Dify Service API",
                "Completion message",
                "POST",
                "/v1/completion-messages",
                {"inputs": {**inputs, query_var: "Hello"}, **blocking},
            )
        )
    if kind in (None, AppKind.WORKFLOW):
        found.append(
            Example(
                "service-workflow",
                "Dify Service API",
                "Workflow run",
                "POST",
                "/v1/workflows/run",
                {"inputs": {**inputs, query_var: "Hello"}, **blocking},
                ""
                if kind
                else "While the app's mode is unknown both are shown; one of them "
                "answers not_chat_app / not_workflow_app.",
            )
        )
    found.append(Example("service-parameters", "Dify Service API", "Input form", "GET",
                         "/v1/parameters"))  # fmt: skip
    model = settings.model_name if reveal else DEFAULT_MODEL_NAME
    openai_body: dict[str, Any] = {"model": model, "messages": [hello]}
    if inputs and kind is not AppKind.CHAT:
        openai_body["inputs"] = inputs
    found.append(
        Example("openai-chat", "OpenAI API", "Chat completion", "POST", "/v1/chat/completions",
                openai_body, "Any OpenAI client: base URL …/v1, api_key = this endpoint's key.")
    )  # fmt: skip
    found.append(Example("openai-models", "OpenAI API", "Model list", "GET", "/v1/models"))
    found.append(
        Example("extension-ping", "API-based Extension", "Ping (what Dify sends on save)",
                "POST", "/extension", {"point": "ping"},
                "Register …/extension under Settings → API Extension with this endpoint's key.")
    )  # fmt: skip
    if settings.webhook_verification == "api_key":
        body: dict[str, Any] = {"inputs": inputs, "user": EXAMPLE_USER}
        if kind is not AppKind.WORKFLOW:
            body["query"] = "Hello"
        if kind is not AppKind.CHAT:
            body["inputs"] = {**inputs, query_var: "Hello"}
        found.append(
            Example("webhook", "Webhook", "Delivery with the API key", "POST", "/webhook", body)
        )
    return found


def page_model(
    *,
    base: str | None,
    settings: Settings,
    raw_settings: Mapping[str, Any],
    authenticated: bool,
    mode: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    notices: list[str] | None = None,
) -> PageModel:
    # an endpoint without an api_key can never be called: its page may explain itself openly
    explain = authenticated or not settings.api_key
    rows = setting_rows(settings, raw_settings, reveal=authenticated, explain=explain)
    reply = str(raw_settings.get("webhook_reply") or "")
    return PageModel(
        base=base,
        authenticated=authenticated,
        app_id=settings.app_id if authenticated else "",
        mode=mode,
        routes=routes_for(mode, settings.webhook_verification),
        settings=rows,
        problems=[row for row in rows if row.state == "problem"],
        guide=guide_for(reply, settings.webhook_verification) if explain else None,
        examples=examples_for(
            mode, settings, parameters if authenticated else None, reveal=authenticated
        ),
        notices=list(notices or []),
    )


# -- HTML ------------------------------------------------------------------------------------

_STYLE = (
    "body{font:15px/1.5 system-ui,sans-serif;max-width:62rem;margin:2rem auto;padding:0 1rem;"
    "color:#1f2328}h1{font-size:1.5rem;margin-bottom:.25rem}h2{font-size:1.15rem;margin-top:2rem}"
    "h3{font-size:1rem;margin:1.25rem 0 .25rem}"
    "table{border-collapse:collapse;width:100%}"
    "td,th{border-bottom:1px solid #d0d7de;padding:.35rem .5rem;text-align:left;vertical-align:top}"
    "code,pre,input{font:13px ui-monospace,monospace}"
    "pre{background:#f6f8fa;padding:.75rem;border-radius:6px;white-space:pre-wrap;"
    "overflow-wrap:anywhere;margin:.25rem 0}"
    ".ok{color:#1a7f37}.problem{color:#cf222e;font-weight:600}.muted,.default{color:#656d76}"
    ".set{color:#1a7f37}.box{border:1px solid #d0d7de;border-radius:6px;padding:.75rem 1rem}"
    "input{padding:.3rem;width:22rem}button{margin-left:.5rem}"
    "ol li{margin:.3rem 0}.out{max-height:16rem;overflow:auto}"
)

# Event delegation on document, so the handlers survive swapping in the keyed body. The key
# lives in this closure only.
_SCRIPT = """(function(){
var key="";
function data(){
 var n=document.getElementById("examples-data");return n?JSON.parse(n.textContent):{};
}
function hdr(){return {"Authorization":"Bearer "+key};}
function keyed(html){
 var doc=new DOMParser().parseFromString(html,"text/html");
 document.body.replaceWith(document.adoptNode(doc.body));
 var s=document.getElementById("keystate");
 if(s&&document.body.dataset.keyed!=="true"){
  s.textContent="That is not this endpoint's API key.";s.className="problem";
 }
}
document.addEventListener("submit",function(e){
 if(e.target.id!=="keyform")return;
 e.preventDefault();
 key=document.getElementById("key").value.trim();
 fetch(location.href,{headers:hdr(),cache:"no-store"})
  .then(function(r){return r.text();}).then(keyed);
});
document.addEventListener("click",function(e){
 var b=e.target.closest("button[data-try]");if(!b)return;
 var ex=data()[b.dataset.try],out=document.getElementById("out-"+b.dataset.try);
 var h=hdr(),body=ex.body===null?undefined:JSON.stringify(ex.body);
 if(body!==undefined)h["Content-Type"]="application/json";
 out.hidden=false;out.textContent="...";
 fetch(ex.url,{method:ex.method,headers:h,body:body}).then(function(r){
  return r.text().then(function(t){
   try{t=JSON.stringify(JSON.parse(t),null,2);}catch(_){}
   out.textContent=r.status+" "+r.statusText+"\\n"+t;
  });
 }).catch(function(err){out.textContent=String(err);});
});
})();"""


def _code_spans(text: str) -> str:
    """Escape ``text``; backtick spans become ``<code>``."""
    parts = text.split("`")
    return "".join(
        f"<code>{escape(part)}</code>" if index % 2 else escape(part)
        for index, part in enumerate(parts)
    )


def _script_json(value: object) -> str:
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def two_way_notice(settings: Settings, fallback: Fallback | None) -> str | None:
    """Why the last deferred run of a two-way endpoint ran inline, if one did."""
    if settings.webhook_reply == "response" or fallback is None:
        return None
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(fallback.at))
    return (
        f"The last background run fell back to running inline ({when}): {fallback.reason}. "
        "Check self_url."
    )


def render(model: PageModel) -> str:
    """The whole HTML page, every dynamic value escaped."""
    base = model.base or BASE_PLACEHOLDER
    webhook_url = f"{base}/webhook"
    parts = [
        '<!doctype html><html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f"<title>App Bridge endpoint</title><style>{_STYLE}</style>",
        f"<script>{_SCRIPT}</script></head>",
        f'<body data-keyed="{"true" if model.authenticated else "false"}">',
        "<h1>App Bridge endpoint</h1>",
        f"<p>Public base URL: <code>{escape(model.base or 'unknown (no Dify-Hook-Url header)')}"
        "</code></p>",
    ]
    if model.problems:
        parts.append(
            f'<p class="problem">{len(model.problems)} setting(s) need attention before this '
            "endpoint works: "
            + ", ".join(f"<code>{escape(row.name)}</code>" for row in model.problems)
            + ".</p>"
        )
    else:
        parts.append('<p class="ok">All required settings are present.</p>')
    parts.extend(f'<p class="problem">{escape(text)}</p>' for text in model.notices)
    parts.append(_key_box(model))
    parts.append(_app_section(model))
    parts.append("<h2>Routes</h2><table><tr><th>Method</th><th>URL</th><th>Purpose</th></tr>")
    parts.extend(
        f"<tr><td>{escape(r.method)}</td><td><code>{escape(base + r.path)}</code></td>"
        f"<td>{escape(r.summary)}</td></tr>"
        for r in model.routes
    )
    parts.append("</table>")
    parts.append(_guide_section(model.guide, webhook_url))
    parts.append("<h2>Settings</h2><table><tr><th>Setting</th><th>State</th><th>Value</th></tr>")
    parts.extend(
        f'<tr><td><code>{escape(r.name)}</code></td><td class="{r.state}">{escape(r.state)}</td>'
        f"<td>{escape(r.value)}</td></tr>"
        for r in model.settings
    )
    parts.append("</table>")
    parts.append(_examples_section(model, base))
    parts.append("</body></html>")
    return "".join(parts)


def _key_box(model: PageModel) -> str:
    if model.authenticated:
        return (
            '<div class="box"><p id="keystate" class="ok">Keyed view: you presented this '
            "endpoint's API key, so values, the app's inputs and “Try it” are shown. The key "
            "stays in this page's memory (sent only as an Authorization header); reload to "
            "forget it.</p></div>"
        )
    return (
        '<div class="box"><form id="keyform"><label for="key">Endpoint API key: </label>'
        '<input id="key" type="password" autocomplete="off" placeholder="the api_key setting">'
        '<button type="submit">Show keyed view</button></form>'
        '<p id="keystate" class="muted">With the key, this page shows the setting values, '
        "examples filled with the app's inputs, and lets you try each request. The key is sent "
        "only as an <code>Authorization</code> header from this browser, never in a URL, and "
        "is not stored.</p></div>"
    )


def _app_section(model: PageModel) -> str:
    if model.mode:
        mode = (
            f"<code>{escape(model.mode)}</code> (learned from its runs); routes for other "
            "app types are hidden"
        )
    else:
        mode = (
            "not known yet: Dify tells a plugin an app's type only when it runs, so routes for "
            "every app type are listed until the first run"
        )
    if not model.authenticated:
        app = "shown with the API key"
    elif model.app_id:
        app = f"<code>{escape(model.app_id)}</code>"
    else:
        app = "not selected"
    return (
        f"<h2>App</h2><p>App: {app} · type: {mode}. Dify does not give plugins an app's name; "
        "it is the app you chose in the endpoint's <code>app</code> setting.</p>"
    )


def _guide_section(guide: Guide | None, webhook_url: str) -> str:
    if guide is None:  # which platform or scheme is configured is not for anonymous callers
        return (
            "<h2>Setup guide</h2><p>Enter the endpoint's API key above to see the setup guide "
            "of its platform.</p>"
        )
    steps = "".join(
        f"<li>{_code_spans(step).replace(escape('{webhook}'), escape(webhook_url))}</li>"
        for step in guide.steps
    )
    return (
        f'<h2>Setup guide: {escape(guide.title)}</h2><p>URL to paste: <code id="webhook-url">'
        f"{escape(webhook_url)}</code></p><ol>{steps}</ol>"
        f"<p><strong>What users see:</strong> {_code_spans(guide.user_sees)}</p>"
        '<p class="muted">The guide follows <code>webhook_reply</code> (a reply platform) or '
        "else <code>webhook_verification</code>.</p>"
    )


def _examples_section(model: PageModel, base: str) -> str:
    runnable = model.base is not None
    parts = [
        "<h2>Examples</h2>",
        "<p>Set the key once in your shell, then copy any block: "
        "<code>export APP_BRIDGE_KEY='&lt;this endpoint's api_key&gt;'</code></p>",
    ]
    if not model.authenticated:
        parts.append('<p class="muted">Required app inputs are filled in the keyed view.</p>')
    data: dict[str, dict[str, Any]] = {}
    face = ""
    for example in model.examples:
        if example.face != face:
            face = example.face
            parts.append(f"<h3>{escape(face)}</h3>")
        parts.append(f"<p>{escape(example.title)}")
        if model.authenticated and runnable:
            parts.append(f' <button type="button" data-try="{escape(example.id)}">Try it</button>')
        parts.append("</p>")
        marker = ' data-runnable="curl"' if runnable else ""
        parts.append(
            f'<pre id="ex-{escape(example.id)}"{marker}>{escape(example.curl(base))}</pre>'
        )
        if example.note:
            parts.append(f'<p class="muted">{escape(example.note)}</p>')
        parts.append(f'<pre class="out" id="out-{escape(example.id)}" hidden></pre>')
        data[example.id] = {
            "url": f"{base}{example.path}",
            "method": example.method,
            "body": example.body,
        }
    if model.authenticated and runnable:
        parts.append(
            f'<script type="application/json" id="examples-data">{_script_json(data)}</script>'
        )
    return "".join(parts)


def render_page(**fields: Any) -> str:
    """The page for plain inputs (the keyword arguments of :func:`page_model`)."""
    return render(page_model(**fields))


def page(call: Call) -> Response:
    """``GET /``: the page for this endpoint, as the caller reaches it."""
    authenticated = is_authenticated(call.settings, call.headers)
    app_id = call.settings.app_id
    mode = call.gateway.mode(app_id) if app_id else None
    parameters: Mapping[str, Any] | None = None
    notices: list[str] = []
    if authenticated:
        notice = two_way_notice(call.settings, FALLBACKS.last(call.endpoint_id))
        if notice is not None:
            notices.append(notice)
    parameters_body = b""
    if authenticated and app_id:
        try:
            fetched = call.gateway.fetched(app_id)
            parameters, parameters_body = fetched.value, fetched.body
        except Exception:  # noqa: BLE001 - any failure: the page still renders
            notices.append(
                "Dify could not return the selected app's input form: check that the app "
                "still exists and is published."
            )
    base = endpoint_base_url(call.headers, "/")
    key = _page_key(
        call.settings_text,
        base=base,
        authenticated=authenticated,
        mode=mode,
        parameters_body=parameters_body,
        notices=notices,
    )
    kept = PAGES.get(key) if key is not None else None
    if kept is None:
        model = page_model(
            base=base,
            settings=call.settings,
            raw_settings=call.raw_settings,
            authenticated=authenticated,
            mode=mode,
            parameters=parameters,
            notices=notices,
        )
        html = render(model).encode()
        if key is None:  # built for this request alone: not worth compressing
            return html_response(Encoded(html, None), None)
        kept = Encoded.of(html)
        PAGES.put(key, kept)
    return html_response(kept, call.headers.get("Accept-Encoding"))


class _Pages:
    """The last pages rendered (UTF-8, with their gzip form), by everything a page is made of
    (it is a pure function of the settings — which :func:`page_model` parses from the raw
    ones —, the base URL, whether the caller is keyed, the app's mode and input form, and the
    notices): a page reloaded or polled is neither built nor compressed again."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._lock = threading.Lock()
        self._pages: OrderedDict[tuple[object, ...], Encoded] = OrderedDict()

    def get(self, key: tuple[object, ...]) -> Encoded | None:
        with self._lock:
            page = self._pages.get(key)
            if page is not None:
                self._pages.move_to_end(key)
            return page

    def put(self, key: tuple[object, ...], page: Encoded) -> None:
        with self._lock:
            self._pages[key] = page
            while len(self._pages) > self._capacity:
                self._pages.popitem(last=False)


PAGES = _Pages(capacity=16)


def _page_key(
    settings_text: str | None,
    *,
    base: str | None,
    authenticated: bool,
    mode: str | None,
    parameters_body: bytes,
    notices: list[str],
) -> tuple[object, ...] | None:
    """The input form enters as the JSON the gateway encoded once; the settings as the JSON
    text they were parsed by (:attr:`bridge.call.Call.settings_text`)."""
    if settings_text is None:  # not plain JSON: built every time
        return None
    return (settings_text, base, authenticated, mode, parameters_body, tuple(notices))
