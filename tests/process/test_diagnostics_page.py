"""The diagnostics page over the local runner: its examples run as copied, and in headless
Chromium the key field swaps in the keyed view and "Try it" answers.

Screenshots go to a temporary directory; set ``APP_BRIDGE_SCREENSHOTS=docs/screenshots`` to
refresh the ones kept in the repository.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from html import unescape
from pathlib import Path

import httpx
import pytest

from tests import browser

KEY = {"Authorization": "Bearer demo-key"}
CHAT, WORKFLOW, BROKEN = "demochat00000001", "demoworkflow0001", "demobroken000001"
ROOT = Path(__file__).resolve().parents[2]


def runnable_blocks(html: str) -> dict[str, str]:
    return {
        match[1]: unescape(match[2])
        for match in re.finditer(
            r'<pre id="ex-([\w-]+)" data-runnable="curl">(.*?)</pre>', html, re.S
        )
    }


def teach_modes(base: str) -> None:
    """One run per app, as any first caller makes: the plugin learns the app's mode."""
    r = httpx.post(f"{base}/e/{CHAT}/v1/chat-messages", json={"query": "hi", "user": "t"},
                   headers=KEY, timeout=30)  # fmt: skip
    assert r.status_code == 200, r.text
    r = httpx.post(f"{base}/e/{WORKFLOW}/v1/workflows/run",
                   json={"inputs": {"city": "Oslo"}, "user": "t"}, headers=KEY, timeout=30)  # fmt: skip
    assert r.status_code == 200, r.text


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
@pytest.mark.parametrize(
    ("hook_id", "route", "body"),
    [
        (CHAT, "chat-messages", {"query": "hi"}),
        (WORKFLOW, "workflows/run", {"inputs": {"city": "Oslo"}}),
        ("democompletion01", "completion-messages", {"inputs": {"query": "x"}}),
        ("demoagent0000001", "chat-messages", {"query": "hi"}),
        ("demoflow00000001", "chat-messages", {"query": "hi"}),
    ],
)
def test_every_example_on_the_keyed_page_works_as_copied(runner, hook_id, route, body):
    base, _ = runner
    r = httpx.post(f"{base}/e/{hook_id}/v1/{route}", json=body, headers=KEY, timeout=30)
    assert r.status_code == 200, r.text  # the first run teaches the plugin the app's mode
    html = httpx.get(f"{base}/e/{hook_id}/", headers=KEY, timeout=30).text
    blocks = runnable_blocks(html)
    assert {"service-parameters", "openai-chat", "openai-models", "extension-ping"} <= set(blocks)
    env = {**os.environ, "APP_BRIDGE_KEY": "demo-key"}
    for name, block in blocks.items():
        out = subprocess.run(["bash", "-c", block], capture_output=True, text=True, env=env,
                             timeout=60, check=False)  # fmt: skip
        assert out.returncode == 0, (name, out.stderr)
        answer = json.loads(out.stdout)
        assert "code" not in answer and "error" not in answer, (name, answer)


def test_routes_follow_the_learned_mode(runner):
    base, _ = runner
    teach_modes(base)
    chat = httpx.get(f"{base}/e/{CHAT}/", timeout=30).text
    workflow = httpx.get(f"{base}/e/{WORKFLOW}/", timeout=30).text
    assert f"{base}/e/{CHAT}/v1/chat-messages" in chat
    assert "/v1/workflows/run" not in chat and "/v1/completion-messages" not in chat
    assert (
        f"{base}/e/{WORKFLOW}/v1/workflows/run" in workflow and "/v1/chat-messages" not in workflow
    )
    assert "<code>chat</code> (learned from its runs)" in chat


def test_the_page_reaches_an_http_client_gzip_coded_when_it_asks(runner):
    """httpx asks for gzip as browsers do, and inflates it; the page is the one sent to a
    client that asks for no coding (curl without ``--compressed``)."""
    base, _ = runner
    coded = httpx.get(f"{base}/e/{CHAT}/", headers=KEY, timeout=30)
    plain = httpx.get(
        f"{base}/e/{CHAT}/", headers={**KEY, "Accept-Encoding": "identity"}, timeout=30
    )
    assert coded.status_code == plain.status_code == 200
    assert coded.headers["content-encoding"] == "gzip"
    assert "content-encoding" not in plain.headers
    assert coded.headers["vary"] == plain.headers["vary"] == "Accept-Encoding"
    assert int(coded.headers["content-length"]) * 3 < int(plain.headers["content-length"])
    assert coded.text == plain.text and "demo-key" not in plain.text
    assert f"{base}/e/{CHAT}/v1/chat-messages" in plain.text


def _shots() -> Path | None:
    configured = os.environ.get("APP_BRIDGE_SCREENSHOTS")
    return (ROOT / configured) if configured else None


def _text(page: browser.Page) -> str:
    return page.evaluate("document.body.innerText")


@pytest.mark.skipif(browser.unavailable() is not None, reason=str(browser.unavailable()))
def test_diagnostics_pages_in_headless_chromium(runner, tmp_path):
    base, _ = runner
    teach_modes(base)
    shots = _shots() or tmp_path
    with browser.chromium() as page:
        # chat app: public view, then the key field → keyed view → Try it
        page.goto(f"{base}/e/{CHAT}/")
        text = _text(page)
        assert f"{base}/e/{CHAT}/v1/chat-messages" in text
        assert "/v1/workflows/run" not in text and "/v1/completion-messages" not in text
        assert "Enter the endpoint's API key above to see the setup guide" in text
        assert re.search(r"webhook_response\s+default\s+dify", text)
        assert re.search(r"model_name\s+default\s+app-bridge", text)
        assert "demo-key" not in page.evaluate("document.documentElement.outerHTML")
        page.evaluate(
            "document.getElementById('key').value='demo-key';"
            "document.getElementById('keyform').requestSubmit()"
        )
        page.wait_for("document.body.dataset.keyed === 'true'")
        assert page.evaluate("location.href") == f"{base}/e/{CHAT}/"  # the key is in no URL
        assert "5b0f7a2e-0c1d-4a61-9a0e-0000000000c1" in _text(page)
        assert "Setup guide: Any sender that can call a URL" in _text(page)
        assert f"Point the sender at {base}/e/{CHAT}/webhook" in _text(page)
        page.evaluate("document.querySelector('button[data-try=\"service-chat\"]').click()")
        answer = page.wait_for(
            "(t => t.startsWith('200') && t)(document.getElementById('out-service-chat').textContent)"
        )
        assert "Hello" in answer and '"conversation_id"' in answer
        chat_shot = page.screenshot(shots / "diagnostics-chat.png")

        # workflow app, keyed: examples carry the required input
        page.goto(f"{base}/e/{WORKFLOW}/")
        assert "/v1/chat-messages" not in _text(page)
        page.evaluate(
            "document.getElementById('key').value='demo-key';"
            "document.getElementById('keyform').requestSubmit()"
        )
        page.wait_for("document.body.dataset.keyed === 'true'")
        assert '"city": "example"' in _text(page)
        page.evaluate("document.querySelector('button[data-try=\"service-workflow\"]').click()")
        answer = page.wait_for(
            "(t => t.startsWith('200') && t)(document.getElementById('out-service-workflow')"
            ".textContent)"
        )
        assert "Sunny in example" in answer
        workflow_shot = page.screenshot(shots / "diagnostics-workflow.png")

        # misconfigured: problems named, the Stripe guide, and a wrong key is told apart
        page.goto(f"{base}/e/{BROKEN}/")
        text = _text(page)
        assert "2 setting(s) need attention" in text
        assert re.search(r"api_key\s+problem\s+is not set", text)
        assert re.search(r"webhook_secret\s+problem\s+is required for webhook_verification", text)
        assert "Setup guide: Stripe webhook" in text
        page.evaluate(
            "document.getElementById('key').value='wrong';"
            "document.getElementById('keyform').requestSubmit()"
        )
        page.wait_for("document.getElementById('keystate').className === 'problem'")
        broken_shot = page.screenshot(shots / "diagnostics-misconfigured.png")
    for shot in (chat_shot, workflow_shot, broken_shot):
        assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 10_000
