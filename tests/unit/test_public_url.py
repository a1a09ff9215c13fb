from bridge.transport.public_url import endpoint_base_url


def test_from_hook_url_strips_route_and_query():
    headers = {"Dify-Hook-Id": "abc", "Dify-Hook-Url": "https://dify.io/e/abc/v1/x?z=1"}
    assert endpoint_base_url(headers, "/v1/x") == "https://dify.io/e/abc"
    headers["Dify-Hook-Url"] = "https://dify.io/e/abc/"
    assert endpoint_base_url(headers, "/") == "https://dify.io/e/abc"


def test_custom_url_template_is_respected():
    headers = {"Dify-Hook-Id": "abc", "Dify-Hook-Url": "https://gw.io:8443/plugins/abc/webhook"}
    assert endpoint_base_url(headers, "/webhook") == "https://gw.io:8443/plugins/abc"


def test_falls_back_to_forwarded_proto_and_host():
    headers = {"Dify-Hook-Id": "abc", "Host": "dify.io", "X-Forwarded-Proto": "https"}
    assert endpoint_base_url(headers, "/") == "https://dify.io/e/abc"


def test_unusable_headers():
    assert endpoint_base_url({}, "/") is None
    assert endpoint_base_url({"Dify-Hook-Url": "javascript:alert(1)"}, "/") is None
