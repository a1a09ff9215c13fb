"""Endpoint routes matched once per method and path (issue 14).

dify_plugin 0.10.2's ``PluginRegistration.dispatch_endpoint_request`` binds the endpoint ``Map``
to every request's environ (a new ``MapAdapter``) and matches it: ~20 µs in a loop, 55–73 µs
per request in the plugin process. Bound to an environ, werkzeug takes the server name from the
request itself, so the subdomain is always empty, and without host matching (the SDK builds a
plain ``Map()`` with one ``Rule(path, methods=[method])`` per endpoint) what a successful match
finds depends on the request's method and path alone: the query string, scheme and host only
shape the redirects and errors a failed match raises. :func:`remembered_dispatch` keeps each
successful match — endpoint and values — by method and ``PATH_INFO`` (:data:`REMEMBERED` at
most, the least recently used forgotten first) and returns a copy of the values; anything not
kept is matched as the SDK matches it, and a failed match (404, 405, a redirect) is never kept,
so it raises as before. A websocket upgrade (its match depends on the scheme) is always matched
by the SDK's code, and so is every request to a map with host matching.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping
from typing import Any

from bridge.transport.sdk.verify import source_digest, verified_modules

REGISTRATION_MODULE = "dify_plugin.core.plugin_registration"
# SHA-256 of 0.10.2's PluginRegistration.dispatch_endpoint_request: bind the map, match, and
# raise a ValueError for what does not match
DISPATCH_SOURCE = "e1bcd79923349f5bdd3e71490dee674c3068a2273898888bafebaa534c1ff95f"
REMEMBERED = 256
MATCHES = "_bridge_matches"  # on a Map: (method, PATH_INFO) -> (endpoint, values)
_replaced: dict[str, Any] = {}  # the SDK's dispatch, once replaced


def remembered_dispatch(self: Any, request: Any) -> tuple[type, Mapping[str, Any]]:
    """``dispatch_endpoint_request``: a kept match, else the SDK's (kept when it matched)."""
    routes = self.endpoints
    environ = request.environ
    if routes.host_matching or "HTTP_UPGRADE" in environ:
        return _replaced["dispatch"](self, request)
    matches = _matches_of(routes)
    key = (environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"))
    found = matches.get(key)
    if found is not None:
        matches.move_to_end(key)
        return found[0], dict(found[1])
    endpoint, values = _replaced["dispatch"](self, request)
    matches[key] = (endpoint, dict(values))
    if len(matches) > REMEMBERED:
        matches.popitem(last=False)
    return endpoint, values


def _matches_of(routes: Any) -> collections.OrderedDict:
    matches = getattr(routes, MATCHES, None)
    if matches is None:
        matches = collections.OrderedDict()
        setattr(routes, MATCHES, matches)
    return matches


def install_remembered_routes(version: str | None = None) -> bool:
    modules = verified_modules(version, REGISTRATION_MODULE)
    if modules is None:
        return False
    registration = getattr(modules[0], "PluginRegistration", None)
    dispatch = getattr(registration, "dispatch_endpoint_request", None)
    if dispatch is remembered_dispatch:
        return True
    if source_digest(dispatch) != DISPATCH_SOURCE or registration is None:
        return False
    _replaced["dispatch"] = dispatch
    registration.dispatch_endpoint_request = remembered_dispatch
    return True
