"""bridge.transport.outbound against a real loopback receiver that verifies with ``standardwebhooks``."""

from __future__ import annotations

import base64
import json
import logging
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from bridge.transport import outbound
from bridge.transport.outbound import (
    MAX_BACKOFF,
    MAX_BODY_CHARS,
    WebhookInputError,
    backoff_delay,
    check_url,
    parse_hosts,
    parse_payload,
    retry_after_seconds,
    send_signed,
    validate_secret,
)

SECRET = "whsec_" + base64.b64encode(b"outbound-test-key-of-32-bytes!!!").decode()
PAYLOAD = {"order_id": "A-17", "marker": "payload-marker-5521"}
MANIFEST = Path(__file__).resolve().parents[2] / "manifest.yaml"
LOOPBACK = "127.0.0.1"  # an exact allowed-hosts entry: the only way to reach a private address


@dataclass
class Reply:
    status: int = 200
    body: bytes = b'{"received": true}'
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    verified: object  # the parsed body, or the verification exception


class Receiver:
    """Loopback HTTP server answering POSTs from a script (the last reply repeats)."""

    def __init__(self, replies: tuple[Reply, ...], secret: str = SECRET) -> None:
        self.replies = list(replies) or [Reply()]
        self.secret = secret
        self.requests: list[Received] = []
        self.release = threading.Event()  # ends delayed replies at teardown
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    verified: object = Webhook(receiver.secret).verify(body, headers)
                except Exception as exc:
                    verified = exc
                index = len(receiver.requests)
                receiver.requests.append(Received(headers, body, verified))
                reply = receiver.replies[min(index, len(receiver.replies) - 1)]
                if reply.delay:
                    receiver.release.wait(reply.delay)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except OSError:
                    pass  # the client gave up (timeout test)

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/in?token=abc"

    def start(self) -> Receiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    started: list[Receiver] = []

    def start(*replies: Reply) -> Receiver:
        server = Receiver(replies).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


class Sleeps(list):
    """Records the backoff delays instead of sleeping them."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def send(url: str, *args: object, **kwargs: object) -> outbound.Delivery:
    """send_signed with the loopback receiver explicitly allowed (the documented way)."""
    kwargs.setdefault("allowed_hosts", LOOPBACK)
    return send_signed(url, *args, **kwargs)


def manifest_version() -> str:
    match = re.search(r"^version:\s*(\S+)", MANIFEST.read_text("utf-8"), re.MULTILINE)
    assert match
    return match.group(1)


# -- delivery ------------------------------------------------------------------------------


def test_success_is_signed_and_verifiable(receiver):
    server = receiver(Reply(200, b'{"received": true}'))
    delivery = send(server.url, "order.created", PAYLOAD, SECRET)
    assert delivery.ok and delivery.status == 200 and delivery.attempts == 1
    assert delivery.error is None and not delivery.truncated
    assert delivery.response_body == '{"received": true}'
    assert re.fullmatch(r"msg_[0-9a-f]{32}", delivery.webhook_id)
    (request,) = server.requests
    assert request.verified == {
        "type": "order.created",
        "timestamp": request.verified["timestamp"],
        "data": PAYLOAD,
    }
    stamp = datetime.fromisoformat(request.verified["timestamp"])
    assert request.verified["timestamp"].endswith("Z")
    assert abs(datetime.now(UTC) - stamp) < timedelta(seconds=30)
    assert request.headers["webhook-id"] == delivery.webhook_id
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 30
    assert request.headers["webhook-signature"].startswith("v1,")
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == f"AppBridge-Webhook/{manifest_version()}"
    assert delivery.as_dict() == {
        "ok": True,
        "status": 200,
        "attempts": 1,
        "webhook_id": delivery.webhook_id,
        "response_body": '{"received": true}',
        "truncated": False,
        "error": None,
    }


def test_payload_as_json_text_and_unicode(receiver):
    server = receiver(Reply(204, b""))
    text = '{"name": "Zoë", "tags": ["直", "ação"]}'
    delivery = send(server.url, " ticket.escalated ", text, SECRET)
    assert delivery.ok and delivery.status == 204 and delivery.response_body == ""
    assert server.requests[0].verified["data"] == json.loads(text)
    assert server.requests[0].verified["type"] == "ticket.escalated"


def test_retry_on_503_then_success_keeps_the_webhook_id(receiver):
    server = receiver(Reply(503, b"busy"), Reply(200, b"ok"))
    sleeps = Sleeps()
    delivery = send(server.url, "order.created", PAYLOAD, SECRET, backoff=0.01, sleep=sleeps)
    assert delivery.ok and delivery.status == 200 and delivery.attempts == 2
    assert delivery.response_body == "ok"
    first, second = server.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == delivery.webhook_id
    assert first.body == second.body  # same event, same envelope timestamp
    assert not isinstance(first.verified, Exception)
    assert not isinstance(second.verified, Exception)
    assert sleeps == [0.01]


def test_idempotency_key_is_the_webhook_id_on_every_attempt(receiver):
    server = receiver(Reply(500), Reply(502), Reply(200))
    delivery = send(
        server.url, "e", [1, 2], SECRET, idempotency_key="order-A-17", backoff=0, sleep=Sleeps()
    )
    assert delivery.ok and delivery.attempts == 3 and delivery.webhook_id == "order-A-17"
    assert {r.headers["webhook-id"] for r in server.requests} == {"order-A-17"}
    assert all(not isinstance(r.verified, Exception) for r in server.requests)


def test_gives_up_after_the_bound_with_exponential_backoff(receiver):
    server = receiver(Reply(500, b"boom"))
    sleeps = Sleeps()
    delivery = send(server.url, "e", PAYLOAD, SECRET, max_attempts=3, backoff=0.01, sleep=sleeps)
    assert len(server.requests) == 3
    assert not delivery.ok and delivery.status == 500 and delivery.attempts == 3
    assert delivery.response_body == "boom"
    assert delivery.error == "gave up after 3 attempts: the receiver answered HTTP 500"
    assert sleeps == [0.01, 0.02]


def test_attempts_are_bounded_even_when_asked_for_more(receiver):
    server = receiver(Reply(503))
    delivery = send(server.url, "e", {}, SECRET, max_attempts=1000, backoff=0, sleep=Sleeps())
    assert delivery.attempts == len(server.requests) == outbound.MAX_ATTEMPTS


def test_client_errors_and_redirects_are_not_retried(receiver):
    server = receiver(Reply(400, b'{"error": "bad"}'))
    delivery = send(server.url, "e", {}, SECRET, sleep=Sleeps())
    assert not delivery.ok and delivery.attempts == 1 and delivery.status == 400
    assert delivery.error == "the receiver answered HTTP 400"
    assert delivery.response_body == '{"error": "bad"}'

    redirect = receiver(Reply(302, b"", {"Location": "http://elsewhere.invalid/"}))
    delivery = send(redirect.url, "e", {}, SECRET, sleep=Sleeps())
    assert not delivery.ok and delivery.status == 302 and len(redirect.requests) == 1


def test_timeout_is_retried_then_reported(receiver):
    server = receiver(Reply(200, delay=5.0))
    started = time.monotonic()
    delivery = send(
        server.url, "e", PAYLOAD, SECRET, timeout=0.3, max_attempts=2, backoff=0, sleep=Sleeps()
    )
    elapsed = time.monotonic() - started
    assert elapsed < 3.0
    assert len(server.requests) == 2
    assert not delivery.ok and delivery.status is None and delivery.attempts == 2
    assert (
        delivery.error == "gave up after 2 attempts: timed out (no complete response within 0.3 s)"
    )


def test_connection_refused_is_retried(receiver):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sleeps = Sleeps()
    delivery = send(
        f"http://127.0.0.1:{port}/", "e", {}, SECRET, max_attempts=2, backoff=0.01, sleep=sleeps
    )
    assert not delivery.ok and delivery.status is None and delivery.attempts == 2
    # generic: no errno, no exception class or message (they would allow port probing)
    assert delivery.error == "gave up after 2 attempts: connection failed"
    assert sleeps == [0.01]


def test_retry_after_is_honoured_up_to_30_seconds(receiver):
    server = receiver(Reply(429, headers={"Retry-After": "2"}), Reply(200))
    sleeps = Sleeps()
    delivery = send(server.url, "e", {}, SECRET, backoff=0.01, sleep=sleeps)
    assert delivery.ok and delivery.attempts == 2 and sleeps == [2.0]

    slow = receiver(Reply(429, b"slow down", {"Retry-After": "120"}), Reply(200))
    sleeps = Sleeps()
    delivery = send(slow.url, "e", {}, SECRET, sleep=sleeps)
    assert not delivery.ok and delivery.status == 429 and delivery.attempts == 1
    assert delivery.error == "the receiver asked to retry after 120 s (more than 30 s); not retried"
    assert sleeps == [] and len(slow.requests) == 1


def test_response_body_is_truncated(receiver):
    server = receiver(Reply(200, b"x" * 50_000))
    delivery = send(server.url, "e", {}, SECRET)
    assert delivery.ok and delivery.truncated
    assert delivery.response_body == "x" * MAX_BODY_CHARS

    wide = receiver(
        Reply(200, ("é" * 5000).encode(), {"Content-Type": "text/plain; charset=utf-8"})
    )
    delivery = send(wide.url, "e", {}, SECRET)
    assert delivery.truncated and delivery.response_body == "é" * MAX_BODY_CHARS

    exact = receiver(Reply(200, b"y" * MAX_BODY_CHARS))
    delivery = send(exact.url, "e", {}, SECRET)
    assert not delivery.truncated and len(delivery.response_body) == MAX_BODY_CHARS


def test_injected_client_is_used_and_left_open(receiver):
    server = receiver(Reply(200))
    with httpx.Client() as client:
        delivery = send(server.url, "e", {}, SECRET, client=client)
        assert delivery.ok and not client.is_closed
    assert len(server.requests) == 1


def test_logs_name_the_host_but_never_the_secret_or_payload(receiver, caplog):
    server = receiver(Reply(503), Reply(200))
    with caplog.at_level(logging.DEBUG, logger="bridge.transport.outbound"):
        send(server.url, "e", PAYLOAD, SECRET, backoff=0, sleep=Sleeps())
    assert "127.0.0.1" in caplog.text and "503" in caplog.text
    for secret_or_data in (SECRET, SECRET.removeprefix("whsec_"), "payload-marker", "token=abc"):
        assert secret_or_data not in caplog.text


# -- refusals (nothing is sent) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://127.0.0.1/x", "only http:// and https:// URLs can be called (got ftp:)"),
        ("file:///etc/passwd", "only http:// and https:// URLs can be called (got file:)"),
        ("javascript:alert(1)", "only http:// and https:// URLs"),
        ("hooks.example.com/in", "only http:// and https:// URLs can be called"),
        ("", "no URL to send to"),
        ("http://user:pw@hooks.example.com/", "must not contain credentials"),
        ("http:///path-only", "the URL has no host"),
        ("http://hooks.example.com:99999/", "invalid port"),
        ("http://hooks.example.com/a b", "spaces or control characters"),
    ],
)
def test_refused_urls(url, message):
    with pytest.raises(WebhookInputError, match=re.escape(message)):
        check_url(url)


def test_refused_scheme_sends_nothing(receiver):
    server = receiver(Reply(200))
    ftp_url = server.url.replace("http://", "ftp://")
    with pytest.raises(WebhookInputError, match="only http"):
        send_signed(ftp_url, "e", {}, SECRET)
    assert server.requests == []


def test_allowed_hosts():
    hosts = "Hooks.Example.com, api.example.org:8443 *.example.net;127.0.0.1"
    assert check_url("https://HOOKS.example.COM/x", hosts) == "https://HOOKS.example.COM/x"
    assert check_url("https://api.example.org:8443/", hosts)
    assert check_url("https://a.b.example.net/", hosts)
    assert check_url("http://127.0.0.1:8080/", hosts)
    for refused in (
        "https://evil.com/",
        "https://hooks.example.com.evil.com/",
        "https://api.example.org/",  # port 443, rule wants 8443
        "https://example.net/",  # wildcard covers subdomains only
        "https://sub.hooks.example.com/",  # exact host only
    ):
        with pytest.raises(WebhookInputError, match="is not in the provider's allowed hosts"):
            check_url(refused, hosts)
    assert check_url("https://anything.example/", None)
    assert check_url("https://anything.example/", " , ")


def test_host_not_allowed_sends_nothing(receiver):
    server = receiver(Reply(200))
    with pytest.raises(
        WebhookInputError, match=re.escape("'127.0.0.1' is not in the provider's allowed")
    ):
        send(server.url, "e", {}, SECRET, allowed_hosts="hooks.example.com")
    assert server.requests == []


@pytest.mark.parametrize(
    "entry", ["https://x.example/path", "user@x.example", "x.example:abc", "a b/c"]
)
def test_invalid_allowed_host_entries(entry):
    with pytest.raises(WebhookInputError, match="is not a host name"):
        parse_hosts(entry)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("{not json", "the payload is not valid JSON: Expecting property name"),
        ('{"a": 1,}', "the payload is not valid JSON"),
        ("", "the payload is empty"),
        ("   ", "the payload is empty"),
        (None, "must be a JSON object or array, not null"),
        ("42", "must be a JSON object or array, not a number"),
        ('"text"', "must be a JSON object or array, not a string"),
        ('{"x": NaN}', "NaN is not allowed"),
        ({"x": {1, 2}}, "contains values that are not JSON"),
    ],
)
def test_malformed_payload(payload, message):
    with pytest.raises(WebhookInputError, match=re.escape(message)):
        parse_payload(payload)


def test_payload_forms():
    assert parse_payload({"a": 1}) == {"a": 1}
    assert parse_payload([1]) == [1]
    assert parse_payload(' {"a": [1, 2]} ') == {"a": [1, 2]}
    assert parse_payload(b"[]") == []


def test_malformed_payload_sends_nothing(receiver):
    server = receiver(Reply(200))
    with pytest.raises(WebhookInputError, match="not valid JSON"):
        send(server.url, "e", "{oops", SECRET)
    assert server.requests == []


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("", "the signing secret is empty"),
        (None, "the signing secret is empty"),
        ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "must be in Standard Webhooks format"),
        ("whsec_not*base64!", "is not valid base64"),
        ("whsec_" + base64.urlsafe_b64encode(b"\xfb" * 32).decode(), "is not valid base64"),
        ("whsec_" + base64.b64encode(b"short").decode(), "24 to 64 random bytes (it encodes 5)"),
        ("whsec_" + base64.b64encode(b"k" * 65).decode(), "(it encodes 65)"),
    ],
)
def test_bad_secret_format(secret, message):
    with pytest.raises(WebhookInputError, match=re.escape(message)) as info:
        validate_secret(secret)
    if secret:
        assert secret not in str(info.value)


def test_good_secrets():
    assert validate_secret(f"  {SECRET} ") == SECRET
    unpadded = "whsec_" + base64.b64encode(b"k" * 25).decode().rstrip("=")
    assert validate_secret(unpadded) == unpadded


def test_bad_secret_sends_nothing(receiver):
    server = receiver(Reply(200))
    with pytest.raises(WebhookInputError, match="Standard Webhooks format"):
        send(server.url, "e", {}, "plain-secret-value")
    assert server.requests == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"event_type": ""}, "the event type is empty"),
        ({"event_type": "x" * 201}, "at most 200 characters"),
        ({"event_type": "a\nb"}, "without control characters"),
        ({"idempotency_key": "has space"}, "printable ASCII characters without spaces"),
        ({"idempotency_key": "ключ"}, "printable ASCII characters without spaces"),
    ],
)
def test_event_type_and_idempotency_key_are_checked(kwargs, message):
    args = {"event_type": "e", **kwargs}
    event_type = args.pop("event_type")
    with pytest.raises(WebhookInputError, match=re.escape(message)):
        send("http://127.0.0.1:9/", event_type, {}, SECRET, **args)


# -- destinations: no private addresses unless exactly allowed (SSRF guard) -----------------


class Recorder:
    """An httpx client whose transport records requests and never touches the network."""

    def __init__(self, status: int = 200) -> None:
        self.requests: list[httpx.Request] = []
        self.status = status
        self.client = httpx.Client(transport=httpx.MockTransport(self._handle))

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status, content=b"mock")


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    recording = Recorder()
    yield recording
    recording.client.close()


def fake_dns(monkeypatch, table: dict[str, object]) -> list[str]:
    """Answer lookups from ``table`` (name -> address, list of addresses, or an exception)."""
    lookups: list[str] = []

    def getaddrinfo(host: str, port: int) -> list[tuple]:
        lookups.append(host)
        answer = table[host]
        if isinstance(answer, BaseException):
            raise answer
        answers = [answer] if isinstance(answer, str) else list(answer)
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in answers
        ]

    monkeypatch.setattr(outbound, "_getaddrinfo", getaddrinfo)
    return lookups


PRIVATE_URLS = [
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://[::1]:{port}/",
    "http://0x7f000001:{port}/",
    "http://2130706433:{port}/",
    "http://127.1:{port}/",
    "http://0177.0.0.1:{port}/",
    "http://localhost:{port}/",
    "http://LOCALHOST.:{port}/",
    "http://metadata.localhost/",
    "http://10.1.2.3/",
    "http://172.16.0.1/",
    "http://172.31.255.254/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://100.127.255.254/",
    "http://0.0.0.0:{port}/",
    "http://[::]:{port}/",
    "http://[::ffff:127.0.0.1]:{port}/",
    "http://[::ffff:7f00:1]:{port}/",
    "http://[::ffff:169.254.169.254]/",
    "http://[64:ff9b::7f00:1]:{port}/",
    "http://[2002:7f00:1::]:{port}/",
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://224.0.0.1/",
    "http://255.255.255.255/",
    "https://198.18.0.1/",
]


@pytest.mark.parametrize("template", PRIVATE_URLS)
def test_private_destinations_are_refused_without_a_connection(receiver, recorder, template):
    server = receiver(Reply(200))
    url = template.format(port=server.server.server_address[1])
    with pytest.raises(WebhookInputError, match=r"public address|loopback name") as info:
        send_signed(url, "e", {}, SECRET, client=recorder.client)
    assert "allowed hosts" in str(info.value)
    with pytest.raises(WebhookInputError, match=r"public address|loopback name"):
        send_signed(url, "e", {}, SECRET)  # the module's own client too
    with pytest.raises(WebhookInputError, match=r"public address|loopback name"):
        check_url(url)  # no DNS needed for literals and localhost
    assert recorder.requests == [] and server.requests == []


def test_wildcard_does_not_unlock_private_addresses(monkeypatch, receiver, recorder):
    server = receiver(Reply(200))
    lookups = fake_dns(monkeypatch, {"a.localtest.me": "127.0.0.1"})
    url = f"http://a.localtest.me:{server.server.server_address[1]}/hook"
    assert check_url(url, "*.localtest.me") == url  # the name is allowed; its address is not
    for client in (recorder.client, None):
        with pytest.raises(WebhookInputError, match="resolves to a non-public address"):
            send_signed(url, "e", {}, SECRET, client=client, allowed_hosts="*.localtest.me")
    assert lookups == ["a.localtest.me"] * 2
    assert recorder.requests == [] and server.requests == []


def test_any_private_address_among_several_refuses(monkeypatch, recorder):
    fake_dns(monkeypatch, {"hooks.example.com": ["93.184.215.14", "10.0.0.7"]})
    with pytest.raises(WebhookInputError, match=r"'hooks\.example\.com' resolves to a non-public"):
        send_signed("https://hooks.example.com/in", "e", {}, SECRET, client=recorder.client)
    assert recorder.requests == []


def test_exact_allowed_host_unlocks_and_the_host_header_survives_pinning(monkeypatch, receiver):
    server = receiver(Reply(200, b"pinned"))
    port = server.server.server_address[1]
    fake_dns(monkeypatch, {"hook.internal.test": "127.0.0.1"})
    url = f"http://Hook.Internal.Test:{port}/in?x=1"
    delivery = send_signed(url, "e", {}, SECRET, allowed_hosts=f"hook.internal.test:{port}")
    assert delivery.ok and delivery.response_body == "pinned"
    (request,) = server.requests
    assert request.headers["host"] == f"hook.internal.test:{port}"
    assert not isinstance(request.verified, Exception)
    with pytest.raises(WebhookInputError, match="not in the provider's allowed hosts"):
        send_signed(url, "e", {}, SECRET, allowed_hosts="hook.internal.test:1")
    assert len(server.requests) == 1


def test_localhost_is_refused_unless_exactly_allowed(receiver):
    server = receiver(Reply(200))
    port = server.server.server_address[1]
    url = f"http://localhost:{port}/hook"
    for allowed in (None, "*.localhost", "127.0.0.1, example.com"):
        with pytest.raises(WebhookInputError, match="allowed hosts"):
            send_signed(url, "e", {}, SECRET, allowed_hosts=allowed)
    assert server.requests == []
    # real resolution of "localhost"; an IPv6 ::1 answer first falls through to 127.0.0.1
    delivery = send_signed(url, "e", {}, SECRET, allowed_hosts="localhost")
    assert delivery.ok and delivery.attempts == 1
    assert server.requests[0].headers["host"] == f"localhost:{port}"


def test_ip_literals_are_exactly_allowed_by_value():
    assert check_url("http://[::1]:8080/", "[::1]:8080")
    assert check_url("http://[0:0::1]/", "::1")
    assert check_url("http://0x7f000001/", "0x7f000001")
    with pytest.raises(WebhookInputError, match="allowed hosts"):  # mapped != the IPv4 entry
        check_url("http://[::ffff:127.0.0.1]/", "127.0.0.1, *.example.com")


def test_pinning_defeats_dns_rebinding_between_attempts(monkeypatch):
    recording = Recorder(status=503)
    answers = iter(["93.184.215.14", "127.0.0.1"])
    monkeypatch.setattr(
        outbound,
        "_getaddrinfo",
        lambda host, port: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))],
    )
    with recording.client:
        delivery = send_signed(
            "https://rebind.example.com/in",
            "e",
            {},
            SECRET,
            client=recording.client,
            sleep=Sleeps(),
        )
    (request,) = recording.requests  # the second attempt was refused before any connection
    assert request.url.host == "93.184.215.14" and request.url.path == "/in"
    assert request.headers["host"] == "rebind.example.com"
    assert request.extensions["sni_hostname"] == "rebind.example.com"
    assert not delivery.ok and delivery.status == 503 and delivery.attempts == 1
    assert "resolves to a non-public address" in delivery.error


def test_resolution_failures_are_generic_and_retried(monkeypatch, recorder):
    fake_dns(monkeypatch, {"gone.example.com": socket.gaierror(-2, "Name or service not known")})
    delivery = send_signed(
        "https://gone.example.com/", "e", {}, SECRET, client=recorder.client, sleep=Sleeps()
    )
    assert not delivery.ok and delivery.attempts == 4 and recorder.requests == []
    assert delivery.error == "gave up after 4 attempts: could not resolve the host"


def test_transport_errors_are_generic(receiver):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    delivery = send(f"http://127.0.0.1:{port}/", "e", {}, SECRET, max_attempts=1)
    assert delivery.error == "connection failed"
    server = receiver(Reply(200, delay=5.0))
    delivery = send(server.url, "e", {}, SECRET, timeout=0.2, max_attempts=1)
    assert delivery.error == "timed out (no complete response within 0.2 s)"
    for text in (delivery.error, json.dumps(delivery.as_dict())):
        assert "Errno" not in text and "Error" not in text and "refused" not in text


def test_public_addresses():
    for address in ("93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "2002:5db8:d70e::1"):
        assert outbound.is_public_address(address), address
    for address in ("127.0.0.1", "::ffff:10.0.0.1", "100.64.0.1", "fe80::1%eth0", "not-an-ip"):
        assert not outbound.is_public_address(address), address


def make_certificate(directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "2", "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )  # fmt: skip
    return cert, key


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_https_pinning_keeps_sni_and_verifies_the_certificate_name(monkeypatch, tmp_path):
    cert, key = make_certificate(tmp_path, "hook.pinned.test")
    server = Receiver((Reply(200, b"tls ok"),))
    names: list[str | None] = []
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    tls.sni_callback = lambda _sock, name, _ctx: names.append(name)
    server.server.socket = tls.wrap_socket(server.server.socket, server_side=True)
    server.start()
    port = server.server.server_address[1]
    fake_dns(monkeypatch, {"hook.pinned.test": "127.0.0.1", "other.pinned.test": "127.0.0.1"})
    trust = ssl.create_default_context(cafile=str(cert))
    try:
        with httpx.Client(verify=trust) as client:
            delivery = send_signed(
                f"https://hook.pinned.test:{port}/in",
                "e",
                {},
                SECRET,
                client=client,
                allowed_hosts="hook.pinned.test",
            )
            assert delivery.ok and delivery.response_body == "tls ok"
            assert server.requests[0].headers["host"] == f"hook.pinned.test:{port}"
            assert names == ["hook.pinned.test"]
            # same address, a name the certificate does not cover: verification fails
            delivery = send_signed(
                f"https://other.pinned.test:{port}/in",
                "e",
                {},
                SECRET,
                client=client,
                allowed_hosts="other.pinned.test",
                max_attempts=1,
            )
        assert not delivery.ok and delivery.error == "connection failed"
        assert len(server.requests) == 1 and names[-1] == "other.pinned.test"
    finally:
        server.stop()


# -- helpers -------------------------------------------------------------------------------


def test_backoff_is_exponential_and_capped():
    assert [backoff_delay(n, 0.5) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert backoff_delay(20, 0.5) == MAX_BACKOFF


def test_retry_after_parsing():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("Thu, 01 Jan 2026 00:00:10 GMT", now) == 10.0
    assert retry_after_seconds("Wed, 31 Dec 2025 00:00:00 GMT", now) == 0.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None
