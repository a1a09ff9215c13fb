"""Seams into the plugin SDK (``dify_plugin``), each checked before use so that an SDK that
changed under it keeps its own behaviour. ``main.py`` calls :func:`install` before it builds
the ``Plugin``; ``tests/unit/test_sdk_seams.py`` pins each seam to the SDK it was verified on.

One module per seam, each with what the SDK does and what the seam does instead:

- ``endpoint``      unparseable requests → 400, a streamed body's headers with its first chunk
                    (any SDK), and the daemon's plain request heads parsed without h11
- ``type_adapter``  one cached ``TypeAdapter`` for the line readers
- ``stdin``         stdin read when the hub says it is readable, not through the threadpool
- ``writer``        one write per message, serialised without the message model
- ``sessions``      a session's invocation helpers built on first use
- ``routing``       an endpoint route's match kept by method and path
- ``answers``       backwards answers routed straight to their invocation by request id
- ``storage``       storage calls without the SDK's generator layers
- ``verify``        which SDK (version, sources) each seam was verified on
"""

from __future__ import annotations

from bridge.transport.sdk.answers import install_routed_answers, waits_for_answer
from bridge.transport.sdk.endpoint import (
    UnparseableRequest,
    install_plain_heads,
    install_request_seam,
)
from bridge.transport.sdk.routing import install_remembered_routes
from bridge.transport.sdk.sessions import install_lazy_invocations
from bridge.transport.sdk.stdin import install_stdin_reader
from bridge.transport.sdk.storage import install_direct_storage
from bridge.transport.sdk.type_adapter import cached_type_adapter, install_type_adapter
from bridge.transport.sdk.verify import VERIFIED_SDK, sdk_version
from bridge.transport.sdk.writer import install_one_write

__all__ = [
    "VERIFIED_SDK",
    "UnparseableRequest",
    "cached_type_adapter",
    "install",
    "sdk_version",
    "waits_for_answer",
]

_installed: dict[str, bool] = {}


def install() -> dict[str, bool]:
    """Install every seam whose preconditions hold; which ones are active, by name."""
    if not _installed:
        _installed["unparseable_requests"] = install_request_seam()
        _installed["plain_request_heads"] = install_plain_heads()
        _installed["routes_by_method_and_path"] = install_remembered_routes()
        _installed["cached_type_adapter"] = install_type_adapter()
        _installed["cooperative_stdin"] = install_stdin_reader()
        _installed["one_write_per_message"] = install_one_write()
        _installed["invocations_on_first_use"] = install_lazy_invocations()
        _installed["answers_by_request_id"] = install_routed_answers()
        _installed["direct_storage_calls"] = install_direct_storage()
    return dict(_installed)
