"""The endpoint's public base URL, as the caller sees it.

Dify's nginx sets ``Dify-Hook-Url: $scheme://$host$request_uri`` and the daemon adds
``Dify-Hook-Id``; the plugin itself only ever sees ``http://<host>/<path>``
(protocol.md §4.1–4.2). The base URL is the hook URL minus the route path, so it is right
even behind a custom ``ENDPOINT_URL_TEMPLATE``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from bridge.config.auth import HeaderMap


def endpoint_base_url(headers: HeaderMap, route_path: str) -> str | None:
    """``https://<dify-host>/e/<hook_id>`` for this request, or None if it cannot be told."""
    hook_id = (headers.get("Dify-Hook-Id") or "").strip()
    hook_url = (headers.get("Dify-Hook-Url") or "").strip()
    if hook_url:
        parts = urlsplit(hook_url)
        if parts.scheme in ("http", "https") and parts.netloc:
            path = parts.path
            if route_path and path.endswith(route_path):
                path = path[: len(path) - len(route_path)]
            elif hook_id and f"/e/{hook_id}" in path:
                path = path[: path.index(f"/e/{hook_id}") + len(f"/e/{hook_id}")]
            return f"{parts.scheme}://{parts.netloc}{path.rstrip('/')}"
    host = (headers.get("Host") or "").strip()
    if not (hook_id and host):
        return None
    scheme = (headers.get("X-Forwarded-Proto") or "http").split(",")[0].strip().lower()
    return f"{'https' if scheme == 'https' else 'http'}://{host}/e/{hook_id}"
