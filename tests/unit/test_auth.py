import pytest

from bridge.config.auth import authenticate, is_authenticated, keys_match, presented_key
from bridge.config.settings import parse_settings
from bridge.errors import BridgeError

SETTINGS = parse_settings({"api_key": "s3cret", "app": "a1"})


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer s3cret"},
        {"Authorization": "bearer   s3cret "},
        {"X-API-Key": "s3cret"},
        {"Authorization": "Basic Zm9v", "X-API-Key": "s3cret"},
    ],
)
def test_accepted(headers):
    authenticate(SETTINGS, headers)
    assert is_authenticated(SETTINGS, headers)


@pytest.mark.parametrize(
    ("headers", "fragment"),
    [
        ({}, "must be provided"),
        ({"Authorization": "Bearer"}, "must be provided"),
        ({"Authorization": "Bearer wrong"}, "invalid"),
        ({"X-API-Key": "s3cre"}, "invalid"),
        ({"Authorization": "Bearer s3cret-and-more"}, "invalid"),
    ],
)
def test_refused_with_401(headers, fragment):
    with pytest.raises(BridgeError) as caught:
        authenticate(SETTINGS, headers)
    assert caught.value.status == 401
    assert caught.value.code == "unauthorized"
    assert fragment in caught.value.message
    assert "s3cret" not in caught.value.message


def test_unset_key_fails_closed_for_everyone():
    settings = parse_settings({"app": "a1"})
    for headers in (
        {},
        {"Authorization": "Bearer "},
        {"X-API-Key": ""},
        {"Authorization": "Bearer x"},
    ):
        with pytest.raises(BridgeError) as caught:
            authenticate(settings, headers)
        assert caught.value.status == 401
        assert "api_key" in caught.value.message


def test_bearer_wins_over_header():
    assert presented_key({"Authorization": "Bearer a", "X-API-Key": "b"}) == "a"


def test_keys_match_edge_cases():
    assert not keys_match("", "")
    assert not keys_match("a", None)
    assert keys_match("ключ", "ключ")  # non-ASCII keys compare as bytes
