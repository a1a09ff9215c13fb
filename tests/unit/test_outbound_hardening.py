"""Send webhook hardening (issue 10 item 8): the explicit SSRF deny list, whole-attempt and
whole-delivery deadlines against a receiver that drips its answer, deep payloads."""

from __future__ import annotations

import base64
import ipaddress
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from bridge.transport import outbound
from bridge.transport.outbound import (
    DENIED_IPV4,
    DENIED_IPV6,
    MAX_PAYLOAD_DEPTH,
    WebhookInputError,
    check_url,
    is_public_address,
    parse_payload,
    send_signed,
)

SECRET = "whsec_" + base64.b64encode(b"outbound-test-key-of-32-bytes!!!").decode()

# -- the deny list ---------------------------------------------------------------------------

REFUSED = [
    "192.0.0.192",  # IETF protocol assignments (passed in 0.5.0)
    "168.63.129.16",  # Azure WireServer (passed in 0.5.0)
    "169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254",  # metadata
    "0.0.0.0", "0.1.2.3", "10.1.2.3", "100.64.0.1", "127.0.0.1", "127.8.8.8", "172.16.0.1",
    "172.31.255.255", "192.0.2.1", "192.31.196.1", "192.52.193.1", "192.88.99.1",
    "192.168.1.1", "192.175.48.1", "198.18.0.1", "198.19.255.255", "198.51.100.1",
    "203.0.113.1", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255",
    "::", "::1", "::127.0.0.1", "::ffff:127.0.0.1", "::ffff:169.254.169.254",
    "::ffff:192.0.0.192", "::ffff:0:127.0.0.1", "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe",
    "64:ff9b:1::808:808", "100::1", "2001::1", "2001:2::1", "2001:db8::1", "2002:7f00:1::1",
    "2002:a9fe:a9fe::1", "3fff::1", "5f00::1", "fc00::1", "fd12:3456::1", "fe80::1",
    "fe80::1%eth0", "fec0::1", "ff02::1", "4000::1",
]  # fmt: skip
ALLOWED = [
    "8.8.8.8", "1.1.1.1", "93.184.215.14", "192.0.1.1", "192.0.3.1", "198.20.0.1",
    "2606:4700:4700::1111", "2a00:1450:4001::1", "::ffff:8.8.8.8", "64:ff9b::808:808",
    "2002:5db8:d70e::1",
]  # fmt: skip


@pytest.mark.parametrize("address", REFUSED)
def test_special_purpose_and_metadata_addresses_are_refused(address):
    assert not is_public_address(address)
    host = f"[{address}]" if ":" in address else address
    if "%" not in address:
        with pytest.raises(WebhookInputError, match="not a public address"):
            check_url(f"https://{host}/hook")


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_pass(address):
    assert is_public_address(address)


def test_the_decision_never_asks_ipaddress_whether_an_address_is_global(monkeypatch):
    """Version independence: the answer comes from the module's own lists, so a Python
    release that changes ``is_global``/``is_private`` cannot change it."""
    for cls in (ipaddress.IPv4Address, ipaddress.IPv6Address):
        for name in ("is_global", "is_private", "is_reserved", "is_link_local", "is_loopback"):
            monkeypatch.setattr(cls, name, property(lambda self: pytest.fail("asked")))
    assert not is_public_address("192.0.0.192") and is_public_address("8.8.8.8")
    assert not is_public_address("::ffff:10.0.0.1") and is_public_address("2606:4700::1")


def test_the_lists_cover_the_iana_registries_entries():
    assert ipaddress.IPv4Network("192.0.0.0/24") in DENIED_IPV4
    assert ipaddress.IPv6Network("2001::/23") in DENIED_IPV6
    assert all(net.num_addresses >= 1 for net in (*DENIED_IPV4, *DENIED_IPV6))


def test_a_name_resolving_to_a_metadata_address_is_refused_before_connecting(monkeypatch):
    monkeypatch.setattr(
        outbound,
        "_getaddrinfo",
        lambda host, port: [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("fd00:ec2::254", port))],
    )
    with pytest.raises(WebhookInputError, match="resolves to a non-public address"):
        send_signed("https://metadata.example.com/", "e", {}, SECRET)


# -- deadlines against a dripping receiver ---------------------------------------------------


class Dripper:
    """Loopback server that answers every request one byte at a time, ``interval`` apart."""

    def __init__(self, *, interval: float = 0.05, headers_too: bool = False) -> None:
        self.interval = interval
        self.headers_too = headers_too
        self.stop = threading.Event()
        self.connections = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.1)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/in"

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(1.0)
            try:
                conn.recv(65536)
                head = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"
                if not self.headers_too:
                    conn.sendall(head)
                    head = b""
                for byte in head + b"x" * 100_000:
                    if self.stop.wait(self.interval):
                        return
                    conn.sendall(bytes([byte]))
            except OSError:
                return  # the client hung up: what the deadline should do

    def close(self) -> None:
        self.stop.set()
        self.sock.close()
        self.thread.join(timeout=5)


@pytest.fixture(params=[False, True], ids=["body-drips", "headers-drip"])
def dripper(request) -> Iterator[Dripper]:
    server = Dripper(headers_too=request.param)
    yield server
    server.close()


def test_each_attempt_has_a_total_deadline(dripper):
    """Every read arrives well inside the 0.5 s timeout; the attempt still ends at 0.5 s."""
    started = time.monotonic()
    delivery = send_signed(dripper.url, "e", {}, SECRET, timeout=0.5, max_attempts=1,
                           allowed_hosts="127.0.0.1")  # fmt: skip
    elapsed = time.monotonic() - started
    assert not delivery.ok and delivery.attempts == 1
    assert delivery.error == "timed out (no complete response within 0.5 s)"
    assert elapsed < 4.0  # the drip alone would take 5000 s; generous for a loaded machine


def test_the_whole_delivery_has_a_deadline(dripper):
    started = time.monotonic()
    delivery = send_signed(dripper.url, "e", {}, SECRET, timeout=0.4, max_attempts=10,
                           backoff=0.3, deadline=1.0, allowed_hosts="127.0.0.1")  # fmt: skip
    elapsed = time.monotonic() - started
    assert not delivery.ok
    assert delivery.error.startswith("gave up: the delivery deadline of 1 s was reached")
    assert delivery.attempts < 10
    assert elapsed < 5.0


def test_no_wait_is_started_that_would_end_past_the_deadline(monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr(
        outbound,
        "_getaddrinfo",
        lambda host, port: (_ for _ in ()).throw(socket.gaierror(-2, "unknown")),
    )
    delivery = send_signed("https://gone.example.com/", "e", {}, SECRET, max_attempts=10,
                           backoff=4.0, deadline=5.0, sleep=waits.append)  # fmt: skip
    assert waits == [4.0]  # the next wait (8 s) would end past the 5 s deadline
    assert delivery.error.startswith("gave up: the delivery deadline of 5 s was reached")
    assert "could not resolve the host" in delivery.error


# -- payloads ----------------------------------------------------------------------------


def nested(levels: int) -> object:
    value: object = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    "payload",
    [
        "[" * 100_000 + "]" * 100_000,
        "[" * (MAX_PAYLOAD_DEPTH + 1) + "]" * (MAX_PAYLOAD_DEPTH + 1),
        nested(5000),
        nested(MAX_PAYLOAD_DEPTH + 1),
    ],
    ids=["text-100000", "text-limit+1", "object-5000", "object-limit+1"],
)
def test_deep_payloads_are_a_clear_error_not_a_recursion_error(payload):
    with pytest.raises(WebhookInputError, match=f"nested more than {MAX_PAYLOAD_DEPTH} levels"):
        parse_payload(payload)


def test_payload_at_the_depth_limit_is_fine():
    assert parse_payload(nested(MAX_PAYLOAD_DEPTH)) == nested(MAX_PAYLOAD_DEPTH)


@pytest.mark.parametrize("payload", ['{"a": "\\ud800"}', {"a": "\ud800"}])
def test_lone_surrogates_are_a_clear_error(payload):
    with pytest.raises(WebhookInputError, match="lone UTF-16 surrogate"):
        parse_payload(payload)


def test_huge_numbers_and_bad_bytes_are_clear_errors():
    with pytest.raises(WebhookInputError, match="number too long"):
        parse_payload('{"n": ' + "1" * 5000 + "}")
    with pytest.raises(WebhookInputError, match="not valid UTF-8"):
        parse_payload(b'{"a": "\xff"}')
