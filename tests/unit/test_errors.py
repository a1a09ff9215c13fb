import json
import logging

from bridge.errors import BridgeError, Family, error_body, invalid_param
from bridge.transport.guard import guarded


def test_dify_envelope():
    assert error_body(invalid_param("query is required", param="query"), Family.DIFY) == {
        "code": "invalid_param",
        "message": "query is required",
        "status": 400,
    }


def test_openai_envelope():
    body = error_body(BridgeError(401, "unauthorized", "Incorrect API key."), Family.OPENAI)
    assert body == {
        "error": {
            "message": "Incorrect API key.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }
    assert error_body(BridgeError(502, "x", "y"), Family.OPENAI)["error"]["type"] == "server_error"


def test_guard_renders_bridge_errors():
    def handler():
        raise invalid_param("bad")

    response = guarded(Family.DIFY, handler)
    assert response.status_code == 400
    assert response.content_type == "application/json"
    assert json.loads(response.get_data()) == {
        "code": "invalid_param",
        "message": "bad",
        "status": 400,
    }


def test_guard_hides_unexpected_exception_text_from_body_and_log(caplog):
    def handler():
        raise RuntimeError("token=sk-live-123 leaked")

    with caplog.at_level(logging.DEBUG):
        response = guarded(Family.OPENAI, handler)
    body = response.get_data(as_text=True)
    assert response.status_code == 500
    assert json.loads(body)["error"]["type"] == "server_error"
    assert "sk-live" not in body and "Traceback" not in body and "RuntimeError" not in body
    assert "sk-live" not in caplog.text
    assert "RuntimeError" in caplog.text  # the type is logged, for operators
