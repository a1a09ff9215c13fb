"""In-process level: daemon bytes → the SDK's parser, router and executor → our Endpoints."""

import gzip
import json

import pytest
from conftest import SETTINGS

from bridge.protocols import diagnostics
from bridge.storage.records import Records
from bridge.transport import encoding

HOOK_URL = "https://dify.example.com/e/hook0000000000ab/"


def test_diagnostics_page_uses_the_public_url(inprocess):
    r = inprocess.request("GET", "/", settings=SETTINGS, headers={"Dify-Hook-Url": HOOK_URL})
    assert r.status == 200
    assert r.header("Content-Type") == "text/html; charset=utf-8"
    assert "https://dify.example.com/e/hook0000000000ab/" in r.text
    assert "localhost" not in r.text
    assert "test-key" not in r.text
    assert "app-chat-0001" not in r.text  # app id only with the key


def test_diagnostics_page_reveals_the_app_to_the_key_holder(inprocess):
    for auth in ({"Authorization": "Bearer test-key"}, {"X-API-Key": "test-key"}):
        r = inprocess.request("GET", "/", settings=SETTINGS, headers=auth)
        assert "app-chat-0001" in r.text
        assert "test-key" not in r.text


def test_diagnostics_page_names_missing_settings(inprocess):
    r = inprocess.request("GET", "/", settings={})
    assert r.status == 200
    assert '<code>api_key</code></td><td class="problem">' in r.text
    assert '<code>app</code></td><td class="problem">' in r.text


BROWSER = "gzip, deflate, br, zstd"  # what Chromium and Firefox send


@pytest.mark.parametrize(
    ("accept_encoding", "coded"),
    [
        (BROWSER, True),
        ("*", True),
        ("br;q=1.0, gzip;q=0.5", True),
        (None, False),
        ("identity", False),
        ("br, zstd", False),
        ("gzip;q=0", False),
        ("gzip;q=0, *", False),  # an explicit refusal beats the wildcard
        ("*;q=0", False),
    ],
)
def test_the_page_is_gzip_coded_only_for_a_client_that_accepts_it(
    inprocess, accept_encoding, coded
):
    keyed = {"Authorization": "Bearer test-key", "Dify-Hook-Url": HOOK_URL}
    plain = inprocess.request("GET", "/", settings=SETTINGS, headers=keyed)
    assert plain.header("Content-Encoding") is None and "app-chat-0001" in plain.text
    headers = keyed if accept_encoding is None else {**keyed, "Accept-Encoding": accept_encoding}
    r = inprocess.request("GET", "/", settings=SETTINGS, headers=headers)
    assert r.status == 200
    assert r.header("Content-Type") == "text/html; charset=utf-8"
    assert r.header("Vary") == "Accept-Encoding"  # both forms say that they vary
    assert r.header("Content-Length") == str(len(r.body))
    if coded:
        assert r.header("Content-Encoding") == "gzip"
        assert gzip.decompress(r.body) == plain.body
        assert len(r.body) * 3 < len(plain.body)
    else:
        assert r.header("Content-Encoding") is None
        assert r.body == plain.body


def test_a_kept_page_is_compressed_once(inprocess, monkeypatch):
    compressed = []
    compress = encoding.gzip.compress
    monkeypatch.setattr(
        encoding.gzip, "compress", lambda data, **kw: compressed.append(1) or compress(data, **kw)
    )
    monkeypatch.setattr(diagnostics, "PAGES", diagnostics._Pages(capacity=16))
    headers = {"Accept-Encoding": BROWSER, "Dify-Hook-Url": HOOK_URL}
    bodies = {inprocess.request("GET", "/", settings=SETTINGS, headers=headers).body for _ in "abc"}
    assert len(bodies) == 1 and len(compressed) == 1
    other = {**headers, "Authorization": "Bearer test-key"}  # another page: compressed once more
    inprocess.request("GET", "/", settings=SETTINGS, headers=other)
    assert len(compressed) == 2


def test_a_page_built_once_is_served_only_to_callers_it_was_built_for(inprocess, monkeypatch):
    """Pages are remembered by what they are made of: never a keyed page for an unkeyed
    caller, another endpoint URL, other settings or another notice."""
    built = []
    render = diagnostics.render
    monkeypatch.setattr(diagnostics, "render", lambda model: built.append(model) or render(model))
    monkeypatch.setattr(diagnostics, "PAGES", diagnostics._Pages(capacity=16))
    keyed = {"Authorization": "Bearer test-key", "Dify-Hook-Url": HOOK_URL}
    first = inprocess.request("GET", "/", settings=SETTINGS, headers=keyed).text
    assert "app-chat-0001" in first
    assert inprocess.request("GET", "/", settings=SETTINGS, headers=keyed).text == first
    assert len(built) == 1
    unkeyed = inprocess.request("GET", "/", settings=SETTINGS, headers={"Dify-Hook-Url": HOOK_URL})
    assert "app-chat-0001" not in unkeyed.text
    other_url = {**keyed, "Dify-Hook-Url": "https://other.example.com/e/hook0000000000ab/"}
    assert (
        "https://other.example.com/"
        in inprocess.request("GET", "/", settings=SETTINGS, headers=other_url).text
    )
    renamed = inprocess.request(
        "GET", "/", settings={**SETTINGS, "model_name": "renamed-model"}, headers=keyed
    ).text
    assert "renamed-model" in renamed and "renamed-model" not in first
    assert len(built) == 4


def test_head_runs_the_get_route(inprocess):
    assert inprocess.request("HEAD", "/", settings=SETTINGS).status == 200


def test_unknown_route_is_a_dify_format_404(inprocess):
    r = inprocess.request("GET", "/v1/nothing-here", settings=SETTINGS)
    assert r.status == 404
    assert r.json() == {
        "code": "not_found",
        "message": "No route GET /v1/nothing-here. See GET / on this endpoint for the routes.",
        "status": 404,
    }


def test_wrong_method_on_an_openai_route_is_an_openai_format_405(inprocess):
    r = inprocess.request("GET", "/v1/chat/completions", settings=SETTINGS)
    assert r.status == 405
    assert r.header("Allow") == "POST"
    assert r.json()["error"]["type"] == "invalid_request_error"


def test_wrong_method_on_a_known_path_is_405_with_allow(inprocess):
    r = inprocess.request("POST", "/", settings=SETTINGS)  # empty POST: chunked 0\r\n\r\n
    assert r.status == 405
    assert r.header("Allow") == "GET, HEAD"
    assert r.json()["code"] == "method_not_allowed"


def test_underscore_header_is_a_400_not_the_sdks_exception(inprocess):
    """protocol.md §4.2: Dify's nginx drops such headers; the SDK's parser raises if one gets
    through, and the entry point's seam (bridge.transport.sdk) answers 400 instead of a traceback."""
    r = inprocess.request("GET", "/", settings=SETTINGS, headers={"X_under": "1"})
    assert r.status == 400
    assert r.json()["code"] == "invalid_param" and r.json()["status"] == 400
    assert "Traceback" not in r.text and "X_under" not in r.text


def test_records_through_the_sdk_storage_invocation(inprocess, workspace):
    session = inprocess.session("endpoint-42")
    records = Records(session.storage, session.endpoint_id)
    assert records.get("conv", "alice") is None  # the daemon's "missing key" error, absorbed
    records.put("conv", "alice", {"conversation_id": "c-1"}, ttl=60)
    assert records.get("conv", "alice") == {"conversation_id": "c-1"}
    (key,) = workspace.storage.data
    assert key.startswith("ab/endpoint-42/conv/")
    assert json.loads(workspace.storage.data[key])["v"] == {"conversation_id": "c-1"}


def test_app_stream_reaches_the_plugin_unchanged(inprocess, workspace):
    session = inprocess.session()
    events = list(
        session.app.chat.invoke(
            app_id="app-chat-0001", query="hi", inputs={}, response_mode="streaming"
        )
    )
    assert [e["event"] for e in events][-1] == "message_end"
    assert workspace.invocations[0].query == "hi"


def test_app_errors_surface_as_the_sdk_exception(inprocess):
    session = inprocess.session()
    with pytest.raises(Exception, match="missing query"):
        list(
            session.app.chat.invoke(
                app_id="app-chat-0001", query="", inputs={}, response_mode="streaming"
            )
        )


def test_fetch_app_through_the_sdk(inprocess):
    params = inprocess.session().app.fetch_app("app-workflow-0001")
    assert "user_input_form" in params
