"""The one place where exceptions turn into responses.

Every Endpoint runs its handler through :func:`guarded`: a :class:`BridgeError` becomes
its family's error envelope; anything else becomes a generic 500 and one log line naming
the exception type — never its message, repr or traceback, which may carry secrets.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from werkzeug import Response

from bridge.errors import (
    BridgeError,
    Family,
    describe_exception,
    error_response,
    internal_error,
)

logger = logging.getLogger(__name__)


def guarded(family: Family, handler: Callable[[], Response]) -> Response:
    try:
        return handler()
    except BridgeError as error:
        return error_response(error, family)
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        logger.error(  # noqa: TRY400 - a traceback could carry secrets
            "unhandled %s in endpoint handler", describe_exception(exc)
        )
        return error_response(internal_error(), family)
