"""A session's invocation helpers built on first use (issue 14).

Every ``Session`` (one per request) builds all 17 invocation helpers of dify_plugin 0.10.2 and
runs 7 imports; a request uses one or two. Where the sources that build them are the verified
ones, :func:`install_lazy_invocations` builds each helper on first use instead.
"""

from __future__ import annotations

import functools
from typing import Any

from bridge.transport.sdk.verify import (
    RUNTIME_MODULE,
    sources_match,
    verified_modules,
)

# the SHA-256 of the dedented source, in dify_plugin 0.10.2, of what builds a session's
# invocation helpers: none but these may run for the helpers to be built later
VERIFIED_SOURCES = {
    "Session._register_invocations": (
        "a52af5c5f5b0e3eff4fb572be5e7e9c33417897f71bc7e8fb83fe56eca4b4ce5"
    ),
    "ModelInvocations.__init__": "966f9e3f2c61b35f740e8eec859f2e0bcec36db154ea67a13a75901893b3d6b2",
    "AppInvocations.__init__": "5a6a5ad8735e328fc50f11d6782c596fc0db4611140e33f1eb99bda763abb8a3",
    "WorkflowNodeInvocations.__init__": (
        "16878dc9d9607c3bc2bda537d03642304e5c10298df35d12f8ab6b0dc9a357c9"
    ),
    "BackwardsInvocation.__init__": (
        "867fe752c74b5f1334036515fb87e6b13fa6069f238fb8eb2063853744514dfe"
    ),
}


def _register_invocations(self: Any) -> None:
    """``Session._register_invocations``: nothing here — each helper (``model``, ``tool``,
    ``app``, ``workflow_node``, ``storage``, ``file``) is built on first use instead."""


_register_invocations.__bridge_seam__ = True  # type: ignore[attr-defined]
_replaced: dict[str, Any] = {}  # the SDK's own functions, by name, once replaced


def invocation_factories(runtime: Any) -> dict[str, Any]:
    """What 0.10.2's ``_register_invocations`` builds, by attribute name."""
    from dify_plugin.invocations.file import File  # noqa: PLC0415 - the SDK imports them late
    from dify_plugin.invocations.storage import StorageInvocation  # noqa: PLC0415
    from dify_plugin.invocations.tool import ToolInvocation  # noqa: PLC0415

    return {
        "model": runtime.ModelInvocations,
        "tool": ToolInvocation,
        "app": runtime.AppInvocations,
        "workflow_node": runtime.WorkflowNodeInvocations,
        "storage": StorageInvocation,
        "file": File,
    }


def _sources_verified(runtime: Any, register: Any) -> bool:
    functions = {"Session._register_invocations": register}
    for name in VERIFIED_SOURCES:
        owner, _, method = name.partition(".")
        if owner != "Session":
            functions[name] = getattr(getattr(runtime, owner, None), method, None)
    return sources_match(VERIFIED_SOURCES, functions)


def install_lazy_invocations(version: str | None = None) -> bool:
    """Every ``Session`` (one per request) built all 17 invocation helpers and ran 7 imports
    (~17 µs); a request uses one or two. Each helper only keeps the session, so building it on
    first use (``functools.cached_property``: once per session, then a plain attribute) is
    the same object graph, later."""
    modules = verified_modules(version, RUNTIME_MODULE)
    if modules is None:
        return False
    runtime = modules[0]
    session = getattr(runtime, "Session", None)
    register = getattr(session, "_register_invocations", None)
    if register is _register_invocations:
        return True
    if not isinstance(session, type) or not _sources_verified(runtime, register):
        return False
    for name, factory in invocation_factories(runtime).items():
        helper = functools.cached_property(factory)
        helper.__set_name__(session, name)
        setattr(session, name, helper)
    _replaced["Session._register_invocations"] = register
    session._register_invocations = _register_invocations  # type: ignore[attr-defined]
    return True
