import json
from types import MappingProxyType

import pytest

from bridge.config import settings as settings_module
from bridge.config.settings import coerce_bool, parse_settings
from bridge.errors import BridgeError

BASE = {"api_key": "k", "app": {"app_id": "a1", "inputs": {}, "files": []}}


def test_minimal_settings_have_defaults_and_no_problems():
    s = parse_settings(BASE)
    assert (s.api_key, s.app_id) == ("k", "a1")
    assert s.webhook_verification == "api_key"
    assert s.webhook_response == "dify"
    assert s.moderation_mode == "keywords"
    assert s.model_name == "app-bridge"
    assert s.problems == ()


@pytest.mark.parametrize(
    "app",
    [{"app_id": " a1 "}, "a1", ' {"app_id": "a1"} '],
)
def test_app_selector_shapes(app):
    assert parse_settings({**BASE, "app": app}).app_id == "a1"


def test_stray_whitespace_and_case_are_tolerated():
    s = parse_settings(
        {**BASE, "api_key": "  k\n", "webhook_verification": " GitHub ", "webhook_secret": " s "}
    )
    assert (s.api_key, s.webhook_verification, s.webhook_secret) == ("k", "github", "s")


def test_missing_and_invalid_settings_are_named():
    s = parse_settings({"webhook_response": "xml", "webhook_inputs": "{not json"})
    names = {p.name for p in s.problems}
    assert names == {"api_key", "app", "webhook_response", "webhook_inputs"}
    assert s.webhook_response == "dify"  # unusable select falls back, and is reported
    with pytest.raises(BridgeError) as caught:
        s.require("app")
    assert caught.value.status == 503
    assert "'app'" in caught.value.message
    assert caught.value.param == "app"


def test_webhook_inputs_must_map_names_to_expressions():
    s = parse_settings({**BASE, "webhook_inputs": '{"city": 3}'})
    assert s.problem("webhook_inputs") is not None
    assert parse_settings({**BASE, "webhook_inputs": '{"city": "body.city"}'}).problems == ()


def test_scheme_needing_a_secret_reports_it():
    s = parse_settings({**BASE, "webhook_verification": "stripe"})
    assert "stripe" in s.problem("webhook_secret").message
    s = parse_settings({**BASE, "webhook_verification": "hmac_sha256", "webhook_secret": "x"})
    assert s.problem("webhook_signature_header") is not None


def test_lists_are_split_on_commas_and_newlines():
    s = parse_settings(
        {
            **BASE,
            "moderation_keywords": "bad, worse\nworst,,",
            "cors_allowed_origins": "https://a.io/, https://b.io",
        }
    )
    assert s.moderation_keywords == ("bad", "worse", "worst")
    assert s.cors_allowed_origins == ("https://a.io", "https://b.io")


@pytest.mark.parametrize("value", [True, 1, "1", "true", " TRUE ", "yes", "on"])
def test_truthy(value):
    assert coerce_bool(value) is True


@pytest.mark.parametrize("value", [False, 0, "0", "false", "", "off", "no"])
def test_falsy(value):
    assert coerce_bool(value, default=True) is False


def test_garbage_settings_never_raise():
    for raw in (None, [], {"api_key": 5, "app": 7, "moderation_mode": ["x"]}):
        parse_settings(raw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "app",
    [["a1"], 5, True, 1.5, {"app_id": 5}, {"app_id": {"x": 1}}, {"id": "a1"}, '{"app_id": 3}',
     "[1]", '{"app_id": "a1"', {"app_id": "a\x00b"}],
)  # fmt: skip
def test_an_app_that_is_not_an_app_selector_is_named(app):
    s = parse_settings({**BASE, "app": app})
    assert s.app_id == ""
    with pytest.raises(BridgeError) as caught:
        s.require("app")
    assert caught.value.code == "invalid_setting" and caught.value.param == "app"
    assert "not an app selector" in caught.value.message or "not set" in caught.value.message


@pytest.mark.parametrize("app", [None, "", {}, {"app_id": ""}])
def test_an_unset_app_says_so(app):
    assert parse_settings({**BASE, "app": app}).problem("app").message.startswith("is not set")


@pytest.mark.parametrize(
    ("name", "value"),
    [("webhook_verification", "githb"), ("webhook_response", "xml"),
     ("moderation_mode", "llm"), ("webhook_verification", ["github"]),
     ("moderation_mode", {"value": "app"})],
)  # fmt: skip
def test_selects_outside_their_options_are_required_by_require_selects(name, value):
    s = parse_settings({**BASE, name: value})
    assert name in s.selects
    with pytest.raises(BridgeError) as caught:
        s.require_selects()
    assert (caught.value.status, caught.value.code) == (503, "invalid_setting")
    assert f"'{name}' must be one of:" in caught.value.message


def test_every_select_of_the_group_yaml_is_checked_against_its_options():
    """Declaring a select in group/app_bridge.yaml and parsing it with ``select`` is all it
    takes: the options in the YAML are the ones the parser accepts."""
    from pathlib import Path

    import yaml

    group = yaml.safe_load((Path(__file__).parents[2] / "group" / "app_bridge.yaml").read_text())
    selects = {s["name"]: [o["value"] for o in s["options"]] for s in group["settings"]
               if s["type"] == "select"}  # fmt: skip
    parsed = parse_settings(BASE)
    assert set(parsed.selects) == set(selects)
    for name, options in selects.items():
        for option in options:
            # run_mode deferred also needs a reply channel (a cross-setting rule of its own)
            context = {"webhook_reply": "slack"} if name == "run_mode" else {}
            raw = {**BASE, **context, name: option}
            assert parse_settings(raw).problem(name) is None, (name, option)
        assert parse_settings({**BASE, name: "not-an-option"}).problem(name) is not None


def test_webhook_token_is_a_secret_setting():
    from bridge.config.settings import SECRET_SETTINGS

    assert parse_settings({**BASE, "webhook_token": " t0k "}).webhook_token == "t0k"
    assert "webhook_token" in SECRET_SETTINGS


@pytest.mark.parametrize("value", ["bad\ud800word", "nul\x00word"])
def test_text_settings_with_nul_or_lone_surrogates_are_named_and_cleaned(value):
    s = parse_settings({**BASE, "moderation_keywords": value, "model_name": value})
    assert {p.name for p in s.problems} == {"moderation_keywords", "model_name"}
    assert s.model_name.encode("utf-8")  # no surrogate left
    assert "\x00" not in s.model_name


def test_the_diagnostics_page_renders_with_unencodable_settings():
    from bridge.protocols.diagnostics import render_page

    raw = {**BASE, "moderation_keywords": "x\ud800"}
    for authenticated in (False, True):
        html = render_page(base=None, settings=parse_settings(raw), raw_settings=raw,
                           authenticated=authenticated)  # fmt: skip
        assert html.encode("utf-8")


@pytest.mark.parametrize("name", ["api_key", "webhook_secret", "webhook_token"])
def test_a_secret_with_nul_or_a_lone_surrogate_reads_as_unset(name):
    s = parse_settings({**BASE, name: "abc\x00"})
    assert getattr(s, name) == ""  # never "abc": a shorter key must not open the endpoint
    assert s.problem(name) is not None


# -- one parse per distinct settings ---------------------------------------------------------

SAME_AS_DIFY_SENDS = [
    {"api_key": "k", "app": {"app_id": "a1", "inputs": {}, "files": []}},
    {"api_key": " k ", "app": "a1", "webhook_verification": "HMAC_SHA256", "webhook_secret": ""},
    {"api_key": "k", "app": ["a1"], "webhook_reply": "slack", "moderation_keywords": "a,\nb"},
    {"api_key": "k\x00", "cors_allowed_origins": "https://a/ https://b", "run_mode": 3},
    {"api_key": 12, "app": {"app_id": 7}, "webhook_inputs": '{"x": 1}', "model_name": 1.5},
    {"app": None, "webhook_verification": None, "webhook_user": True},
    {},
]


@pytest.mark.parametrize("raw", SAME_AS_DIFY_SENDS)
def test_remembered_settings_are_what_a_fresh_parse_gives(raw):
    first = parse_settings(raw)
    again = parse_settings(json.loads(json.dumps(raw)))  # the next request: equal, not the same
    assert again is first
    assert first == settings_module._parse(raw)


def test_settings_of_other_types_are_parsed_every_time():
    for raw in (
        {"api_key": "k", "app": ("a1",)},  # a tuple, which JSON never decodes to
        MappingProxyType({"api_key": "k", "app": "a1"}),
        {"api_key": "k", "app": "a1", "model_name": IntLike(1)},
        {"api_key": "k", 1: "x"},
    ):
        assert parse_settings(raw) is not parse_settings(raw)
        assert parse_settings(raw) == settings_module._parse(raw)
    assert parse_settings(None) == settings_module._parse({})


def test_a_changed_setting_is_parsed_again_and_memory_is_bounded():
    base = {"api_key": "k", "app": "a1"}
    assert parse_settings(base).app_id == "a1"
    assert parse_settings({**base, "app": "a2"}).app_id == "a2"
    for i in range(settings_module.PARSED_SETTINGS_KEPT * 2):
        parse_settings({**base, "api_key": f"k{i}"})
    assert settings_module._parsed.cache_info().currsize == settings_module.PARSED_SETTINGS_KEPT


class IntLike(int):
    def __str__(self) -> str:
        return "not one"
