"""Unrouted requests: the family of the path decides the error format; templates match."""

import pytest

from bridge.errors import Family
from bridge.transport.fallback import family_for_path, unrouted
from bridge.transport.routes import allowed_methods


@pytest.mark.parametrize(
    "path",
    ["/v1/embeddings", "/v1/completions", "/v1/audio/speech", "/v1/images/generations",
     "/v1/models/app-bridge", "/v1/responses/resp_1/input_items", "/v1/files",
     "/v1/files/file-1/content", "/v1/moderations", "/v1/chat/completions/x", "/v1/batches/"],
)  # fmt: skip
def test_openai_paths(path):
    assert family_for_path(path) is Family.OPENAI


@pytest.mark.parametrize(
    "path",
    ["/", "/v1", "/v1/chat-messages/t/stop", "/v1/completion-messages", "/v1/files/upload",
     "/v1/files/f-1/preview", "/v1/conversations", "/v1/messages", "/v1/audio-to-text",
     "/v1/text-to-audio", "/v1/workflows/logs", "/embeddings", "/v2/embeddings", "/webhook/x"],
)  # fmt: skip
def test_dify_paths(path):
    assert family_for_path(path) is Family.DIFY


def test_path_templates_match_one_segment():
    assert allowed_methods("/v1/responses/resp_abc") == ("GET", "HEAD")
    assert allowed_methods("/v1/responses") == ("POST",)
    assert allowed_methods("/v1/responses/a/b") == ()
    error, headers = unrouted("DELETE", "/v1/responses/resp_abc")
    assert (error.status, headers) == (405, {"Allow": "GET, HEAD"})
