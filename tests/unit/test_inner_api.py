"""The inner-API stand-in answers as Dify does, in the framing the daemon parses."""

import json
import struct

import httpx
import pytest

from devkit.inner_api import InnerApi
from devkit.workspace import App, Script, Workspace

KEY = "inner-key"


def read_frames(data: bytes) -> list[dict]:
    """The daemon's LengthPrefixedChunking: magic 0x0f, header length 10, data length."""
    frames, at = [], 0
    while at < len(data):
        magic, _, header_length = struct.unpack_from("<BBH", data, at)
        assert (magic, header_length) == (0x0F, 0x0A)
        (length,) = struct.unpack_from("<I", data, at + 4)
        start = at + 4 + header_length
        frames.append(json.loads(data[start : start + length]))
        at = start + length
    return frames


@pytest.fixture
def api():
    ws = Workspace([App("c", "chat", script=Script(answer="one two")),
                    App("b", "chat", script=Script(answer="a b c", fail_after=1))])  # fmt: skip
    with InnerApi(ws, KEY) as server:
        yield server


def post(api, path, body, *, key=KEY, chunked=True):
    raw = json.dumps(body).encode()
    content = iter([raw]) if chunked else raw  # the daemon's Go client sends chunked bodies
    return httpx.post(f"{api.url}/inner/api/{path}", content=content, timeout=10,
                      headers={"X-Inner-Api-Key": key, "Content-Type": "application/json"})  # fmt: skip


def test_invoke_app_streams_length_prefixed_frames(api):
    r = post(api, "invoke/app", {"app_id": "c", "query": "q", "inputs": {},
                                 "response_mode": "streaming", "user_id": "", "tenant_id": "t"})  # fmt: skip
    frames = read_frames(r.content)
    assert [f["error"] for f in frames] == [""] * len(frames)
    assert [f["data"]["event"] for f in frames] == ["message", "message", "message_end"]
    (call,) = api.calls
    assert call.frames == 3 and not call.failure and call.body["user_id"] == ""


def test_failures_look_like_difys(api):
    before = post(api, "invoke/app", {"app_id": "c", "query": "", "inputs": {},
                                      "response_mode": "streaming"})  # fmt: skip
    assert before.status_code == 400 and before.json()["message"] == "missing query"
    broken = read_frames(post(api, "invoke/app", {"app_id": "b", "query": "q", "inputs": {},
                                                  "response_mode": "streaming"}).content)  # fmt: skip
    assert broken[-1] == {"error": "upstream connection reset"}


def test_fetch_app_encrypt_and_the_key(api):
    params = post(api, "fetch/app/info", {"app_id": "c"}, chunked=False).json()
    assert params["error"] == "" and "user_input_form" in params["data"]["data"]
    settings = {"api_key": "k", "app": {"app_id": "c"}}
    echoed = post(api, "invoke/encrypt", {"opt": "decrypt", "data": settings}).json()
    assert echoed == {"data": {"data": settings}, "error": ""}
    assert post(api, "invoke/encrypt", {"opt": "decrypt"}, key="wrong").status_code == 401
