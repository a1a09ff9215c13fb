"""Fuzzing every route through the SDK's executor (issue 10: "nothing one request does…").

Hypothesis builds requests — route-shaped JSON with hostile values, deep and huge
structures, lone surrogates, NUL, invalid UTF-8, forms, raw bytes — under random but
plausible settings (every select option and some outside them, odd app selectors, mappings,
CORS, a webhook token), and sends each as the daemon would. For every answer:

- no 5xx except the documented ``503 invalid_setting``;
- no traceback or file path in the body;
- no secret (``api_key``, ``webhook_secret``, ``webhook_token``) in the body or headers.

Seeded and bounded (``derandomize``, ``max_examples``) so it runs the same everywhere and
the whole file stays well under 30 s.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from conftest import CHAT_APP, make_workspace
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.config.settings import MODERATION_MODES, VERIFICATION_SCHEMES, WEBHOOK_RESPONSES
from bridge.transport.routes import ROUTES

API_KEY = "fz-api-key-7f3a9c1e5b0d"
WEBHOOK_SECRET = "fz-webhook-secret-2d8e4b6a0c1f"
TOKEN = "fz-url-token-9b1d3f5a7c2e"
SECRETS = (API_KEY, WEBHOOK_SECRET, TOKEN)
DOCUMENTED_5XX = {(503, "invalid_setting")}

FUZZ = settings(
    max_examples=80,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)  # fmt: skip

# -- values -----------------------------------------------------------------------------------

HOSTILE_TEXT = st.sampled_from(
    ["\ud800", "x\udfffy", "a\x00b", "\x00", "é" * 3, "\u2028", "🙂", "", " ", "null", "{}",
     "\\u0000", "${jndi:ldap://x}", "' OR 1=1 --", "<script>", "\r\n", "a" * 3000]
)  # fmt: skip
TEXT = st.one_of(st.text(max_size=24), HOSTILE_TEXT)
LEAF = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), TEXT,
    st.integers(min_value=10**30, max_value=10**40),
)  # fmt: skip
VALUE = st.recursive(
    LEAF,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=10,
)


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


RAW_VALUES = st.one_of(
    st.integers(min_value=40, max_value=400).map(deep),
    st.just("1" * 4400),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", '"\\ud800"', '"\\u0000"',
                     '"\\udc00\\ud800"', "[1,]", "{", "tru"]),
)  # fmt: skip


@st.composite
def json_body(draw, shape: dict[str, st.SearchStrategy]) -> bytes:
    """A route-shaped object (each field optional, any value), sometimes with one field's
    value replaced by raw hostile JSON text."""
    fields = {k: draw(v) for k, v in shape.items() if draw(st.integers(0, 4))}  # mostly there
    text = json.dumps(fields)
    if fields and not draw(st.integers(0, 3)):
        name = draw(st.sampled_from(sorted(fields)))
        text = json.dumps({**fields, name: "\x01raw\x01"}).replace('"\\u0001raw\\u0001"',
                                                                    draw(RAW_VALUES))  # fmt: skip
    return text.encode()


SERVICE_SHAPE = {
    "query": st.one_of(TEXT, TEXT, VALUE),
    "inputs": st.one_of(st.dictionaries(TEXT, VALUE, max_size=3), st.just({}), VALUE),
    "user": st.one_of(TEXT, TEXT, VALUE),
    "response_mode": st.one_of(st.sampled_from(["blocking", "streaming"]), VALUE),
    "conversation_id": st.one_of(st.just(""), st.uuids().map(str), TEXT),
    "files": st.one_of(st.just([]), VALUE),
}
MESSAGE = st.fixed_dictionaries(
    {"role": st.one_of(st.sampled_from(["user", "system", "assistant", "developer"]), TEXT),
     "content": st.one_of(TEXT, VALUE,
                          st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": TEXT}),
                                   max_size=2))}
)  # fmt: skip
OPENAI_SHAPE = {
    "messages": st.one_of(st.lists(MESSAGE, max_size=3), VALUE),
    "stream": st.one_of(st.booleans(), VALUE),
    "stream_options": st.one_of(st.just({"include_usage": True}), VALUE),
    "model": TEXT,
    "user": st.one_of(TEXT, VALUE),
    "inputs": VALUE,
}
EXTENSION_SHAPE = {
    "point": st.one_of(
        st.sampled_from(["ping", "app.external_data_tool.query", "app.moderation.input",
                         "app.moderation.output"]), TEXT, VALUE),
    "params": st.one_of(
        st.fixed_dictionaries({}, optional={"query": st.one_of(TEXT, VALUE),
                                            "inputs": VALUE, "text": st.one_of(TEXT, VALUE),
                                            "tool_variable": TEXT, "app_id": TEXT}),
        VALUE),
}  # fmt: skip
WEBHOOK_SHAPE = {
    **SERVICE_SHAPE,
    "type": st.one_of(st.sampled_from(["url_verification", 1, 0]), VALUE),
    "challenge": TEXT,
    "events": VALUE,
    "event": VALUE,
    "id": TEXT,
}

OTHER_BODIES = st.one_of(
    st.binary(max_size=48),
    st.sampled_from([b"", b"0\r\n\r\n", b"\xff\xfe", b'{"query": "caf\xe9"}', b"\xed\xa0\x80"]),
    st.dictionaries(st.text(max_size=8), st.text(max_size=12), max_size=3).map(
        lambda d: urlencode(d).encode()
    ),
    st.sampled_from([b"payload=%7B%22a%22%3A" + b"%5B" * 300 + b"%7D", b"payload=%7B%7D",
                     b"text=a%00b", b"x=%FF"]),
)  # fmt: skip


# -- settings, headers, query -----------------------------------------------------------------

APP = st.one_of(
    st.just({"app_id": CHAT_APP}),
    st.just({"app_id": CHAT_APP}),
    st.sampled_from(["app-workflow-0001", "app-completion-0001", "app-agent-0001"]).map(
        lambda a: {"app_id": a}
    ),
    st.sampled_from([None, "", CHAT_APP, ["x"], 7, {"app_id": 7}, {"id": "x"}, '{"app_id": ',
                     {"app_id": "missing-app"}]),
)  # fmt: skip


def select(options: tuple[str, ...]) -> st.SearchStrategy:
    return st.one_of(st.sampled_from(options), st.sampled_from(["", "nope", " GitHub ", ["x"]]))


MAPPINGS = st.sampled_from(
    ["body.query", "to_string(body)", "join(',', map(&to_string(@), body.items))",
     "headers.\"content-type\"", "query.q", "to_string(query)", "length(body)", "body.[",
     "max(body)", "sort(body)", "not_a_function(body)"]
)  # fmt: skip

SETTINGS = st.fixed_dictionaries(
    {"api_key": st.just(API_KEY), "app": APP},
    optional={
        "webhook_verification": select(VERIFICATION_SCHEMES),
        "webhook_secret": st.just(WEBHOOK_SECRET),
        "webhook_token": st.just(TOKEN),
        "webhook_signature_header": st.sampled_from(["X-Signature", ""]),
        "webhook_response": select(WEBHOOK_RESPONSES),
        "webhook_query": MAPPINGS,
        "webhook_user": MAPPINGS,
        "webhook_inputs": st.one_of(MAPPINGS.map(lambda e: json.dumps({"x": e})),
                                    st.sampled_from(["{", "[]", '{"x": 1}'])),
        "moderation_mode": select(MODERATION_MODES),
        "moderation_keywords": st.sampled_from(["bad, worse", "", "\ud800"]),
        "query_variable": st.sampled_from(["query", "text", ""]),
        "cors_allowed_origins": st.sampled_from(["*", "https://app.example.com", ""]),
        "model_name": TEXT,
    },
)  # fmt: skip

# mostly the right key and JSON, so most requests get past authentication and media type
CREDENTIAL = st.sampled_from([API_KEY] * 6 + [TOKEN, "wrong-key", ""])
HEADERS = st.fixed_dictionaries(
    {
        "Content-Type": st.sampled_from(
            ["application/json"] * 6 + ["application/x-www-form-urlencoded", "text/plain",
             "application/vnd.api+json", "multipart/form-data; boundary=x", "application/xml",
             "application/json; charset=latin-1"]),
        "Authorization": CREDENTIAL.map(lambda k: f"Bearer {k}"),
    },
    optional={
        "X-API-Key": CREDENTIAL,
        "Origin": st.sampled_from(["https://app.example.com", "https://evil.example", "null"]),
        "Idempotency-Key": st.text(alphabet="abcdef0123456789-", min_size=1, max_size=12),
        "X-Conversation-Id": st.one_of(st.uuids().map(str), st.just("nope")),
        "X-GitHub-Event": st.sampled_from(["ping", "push"]),
        "Access-Control-Request-Method": st.sampled_from(["POST", "GET", "DELETE"]),
    },
)  # fmt: skip
QUERY = st.dictionaries(
    st.sampled_from(["api_key", "token", "q", "hub.mode", "hub.challenge", "hub.verify_token"]),
    st.one_of(CREDENTIAL, st.sampled_from(["subscribe", "12345", "%00", "é"])),
    max_size=3,
)


# -- the check --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plugin(_inprocess_plugin):
    """The session's in-process plugin; each example gives it a fresh workspace."""
    return _inprocess_plugin


def check(plugin, method: str, path: str, query: dict, headers: dict, body: bytes, conf: dict):
    plugin.workspace = make_workspace()
    conf = {k: v for k, v in conf.items() if v is not None}
    target = f"{path}?{urlencode(query)}" if query else path
    response = plugin.request(method, target, settings=conf, headers=headers, body=body)
    text = response.body.decode("utf-8", "replace")
    if response.status >= 500:
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = {}
        code = parsed.get("code") or (parsed.get("error") or {}).get("code")
        assert (response.status, code) in DOCUMENTED_5XX, (response.status, text[:300])
    assert "Traceback" not in text and 'File "' not in text, text[:300]
    exposed = text + json.dumps(response.headers)
    for secret in SECRETS:
        assert secret not in exposed, (secret, text[:300])
    return response


SERVICE_PATHS = st.sampled_from(["/v1/chat-messages", "/v1/completion-messages",
                                 "/v1/workflows/run"])  # fmt: skip


@FUZZ
@given(path=SERVICE_PATHS, body=st.one_of(json_body(SERVICE_SHAPE), OTHER_BODIES),
       headers=HEADERS, conf=SETTINGS)  # fmt: skip
def test_fuzz_service_api(plugin, path, body, headers, conf):
    check(plugin, "POST", path, {}, headers, body, conf)


@FUZZ
@given(body=st.one_of(json_body(OPENAI_SHAPE), OTHER_BODIES), headers=HEADERS, conf=SETTINGS)
def test_fuzz_openai(plugin, body, headers, conf):
    check(plugin, "POST", "/v1/chat/completions", {}, headers, body, conf)


@FUZZ
@given(body=st.one_of(json_body(EXTENSION_SHAPE), OTHER_BODIES), headers=HEADERS, conf=SETTINGS)
def test_fuzz_extension(plugin, body, headers, conf):
    check(plugin, "POST", "/extension", {}, headers, body, conf)


@FUZZ
@given(body=st.one_of(json_body(WEBHOOK_SHAPE), OTHER_BODIES), query=QUERY, headers=HEADERS,
       conf=SETTINGS)  # fmt: skip
def test_fuzz_webhook(plugin, body, query, headers, conf):
    check(plugin, "POST", "/webhook", query, headers, body, conf)


ALL_TARGETS = st.one_of(
    st.sampled_from([(r.method, r.path) for r in ROUTES]),
    st.tuples(st.sampled_from(["GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD"]),
              st.sampled_from(["/", "/v1/models", "/v1/parameters", "/webhook", "/nope",
                               "/v1/responses", "/v1/chat/completions", "/v1/x"])),
)  # fmt: skip


@FUZZ
@given(target=ALL_TARGETS, query=QUERY, headers=HEADERS, conf=SETTINGS,
       body=st.one_of(st.just(b""), OTHER_BODIES, json_body(SERVICE_SHAPE)))  # fmt: skip
def test_fuzz_every_route_and_method(plugin, target, query, headers, conf, body):
    method, path = target
    check(plugin, method, path, query, headers, body if method != "GET" else b"", conf)
