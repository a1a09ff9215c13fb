"""The daemon's request bytes (protocol.md §4.2), parsed by the SDK's own parser."""

from dify_plugin.core.utils.http_parser import deserialize_request

from devkit.wire import (
    BODY_LIMIT,
    canonical_header_key,
    daemon_request_bytes,
    endpoint_request_message,
    go_query_encode,
)

PROTOCOL_EXAMPLE = (
    b"POST /hooks/in?a=hello+world&a=2&z=1 HTTP/1.1\r\n"
    b"Host: dify.example.com\r\n"
    b"User-Agent: Go-http-client/1.1\r\n"
    b"Content-Length: 7\r\n"
    b"Authorization: Bearer t\r\n"
    b"Content-Type: application/json\r\n"
    b"Dify-Hook-Id: hook123\r\n"
    b"Dify-Hook-Url: https://dify.example.com/e/hook123/hooks/in?z=1&a=hello%20world&a=2\r\n"
    b"X-Forwarded-Proto: https\r\n"
    b"X-Signature: abc\r\n"
    b"\r\n"
    b'{"x":1}'
)


def test_protocol_example_byte_for_byte():
    raw = daemon_request_bytes(
        "POST",
        "/hooks/in?z=1&a=hello%20world&a=2",
        headers=[
            ("x-signature", "abc"),
            ("content-type", "application/json"),
            ("Authorization", "Bearer t"),
            (
                "Dify-Hook-Url",
                "https://dify.example.com/e/hook123/hooks/in?z=1&a=hello%20world&a=2",
            ),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-For", "203.0.113.9"),
            ("X-Real-IP", "203.0.113.9"),
            ("Content-Length", "7"),
        ],
        body=b'{"x":1}',
        hook_id="hook123",
    )
    assert raw == PROTOCOL_EXAMPLE


def test_empty_post_arrives_chunked_as_the_daemon_sends_it():
    raw = daemon_request_bytes("POST", "/webhook")
    assert b"Transfer-Encoding: chunked\r\n" in raw
    assert raw.endswith(b"\r\n\r\n0\r\n\r\n")
    request = deserialize_request(raw)
    assert request.get_data() == b"0\r\n\r\n"
    assert request.headers["Content-Length"] == "5"
    assert request.get_json(silent=True) is None


def test_bodyless_get_has_no_framing_header():
    raw = daemon_request_bytes("GET", "/")
    assert b"Content-Length" not in raw and b"Transfer-Encoding" not in raw
    assert deserialize_request(raw).get_data() == b""


def test_body_is_cut_at_ten_mebibytes():
    raw = daemon_request_bytes("POST", "/x", body=b"a" * (BODY_LIMIT + 10))
    request = deserialize_request(raw)
    assert len(request.get_data()) == BODY_LIMIT
    assert request.headers["Content-Length"] == str(BODY_LIMIT)


def test_host_headers_and_hook_url_fallback():
    raw = daemon_request_bytes(
        "GET",
        "/v1/parameters?b=2",
        headers={"Host": "d.io", "X-Original-Host": "public.io"},
        hook_id="h1",
    )
    request = deserialize_request(raw)
    assert request.host == "public.io"
    assert request.headers["Dify-Hook-Url"] == "https://public.io/e/h1/v1/parameters"
    assert request.headers["Dify-Hook-Id"] == "h1"
    assert "X-Original-Host" not in request.headers
    assert request.scheme == "http"  # the plugin never sees the caller's scheme


def test_caller_user_agent_is_kept_and_headers_canonicalised():
    raw = daemon_request_bytes(
        "GET", "/", headers={"user-agent": "curl/8", "x-hub-signature-256": "s"}
    )
    assert b"User-Agent: curl/8\r\n" in raw and b"X-Hub-Signature-256: s\r\n" in raw


def test_go_query_and_header_rules():
    assert go_query_encode("b=1&a=x y&a=%2F&c") == "a=x+y&a=%2F&b=1&c="
    assert canonical_header_key("x-api-key") == "X-Api-Key"
    assert canonical_header_key("X_under") == "X_under"
    assert canonical_header_key("bad header") == "bad header"


def test_request_message_shape():
    message = endpoint_request_message(
        b"GET / HTTP/1.1\r\n\r\n", {"api_key": "k"}, endpoint_id="ep"
    )
    assert list(message) == [
        "session_id", "conversation_id", "message_id", "app_id", "endpoint_id", "context", "event", "data",
    ]  # fmt: skip
    assert list(message["data"]) == ["action", "raw_http_request", "settings", "type", "user_id"]
    assert message["data"]["raw_http_request"] == b"GET / HTTP/1.1\r\n\r\n".hex()


def test_daemon_error_bodies_are_byte_exact():
    """As the real daemon wrote them (docs/real-daemon.md)."""
    from devkit.wire import daemon_error_body

    assert daemon_error_body(-500, "killed by timeout") == (
        b'{"code":-500,"message":"{\\"message\\":\\"killed by timeout\\",'
        b'\\"error_type\\":\\"PluginDaemonInternalServerError\\",\\"args\\":null}","data":null}'
    )
    assert daemon_error_body(-400, "endpoint not found") == (
        b'{"code":-400,"message":"{\\"message\\":\\"endpoint not found\\",'
        b'\\"error_type\\":\\"PluginDaemonBadRequestError\\",\\"args\\":null}","data":null}'
    )
