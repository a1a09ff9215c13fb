from bridge.diagnostics import render_page
from bridge.settings import parse_settings

RAW = {
    "api_key": "super-secret-key",
    "app": {"app_id": "app-1234"},
    "webhook_verification": "github",
    "webhook_secret": "gh-secret-value",
}


def page(raw, *, authenticated, base="https://dify.io/e/abc"):
    return render_page(
        base=base, settings=parse_settings(raw), raw_settings=raw, authenticated=authenticated
    )


def test_public_page_shows_urls_but_no_secret_or_app_id():
    html = page(RAW, authenticated=False)
    assert "https://dify.io/e/abc/" in html
    assert "super-secret-key" not in html and "gh-secret-value" not in html
    assert "app-1234" not in html


def test_authenticated_page_shows_app_id_but_still_no_secret():
    html = page(RAW, authenticated=True)
    assert "app-1234" in html
    assert "super-secret-key" not in html and "gh-secret-value" not in html


def test_problems_are_named():
    html = page({"webhook_verification": "stripe"}, authenticated=False)
    assert "need attention" in html
    for name in ("api_key", "app", "webhook_secret"):
        assert f'<code>{name}</code></td><td class="problem">' in html


def test_everything_dynamic_is_escaped():
    html = page(RAW, authenticated=True, base='https://x.io/e/"><script>alert(1)</script>')
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
