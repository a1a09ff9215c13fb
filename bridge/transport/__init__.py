"""Transport: HTTP as the daemon carries it, in (bodies, routes) and out (responses, SSE).

Request side
- ``request_head`` the daemon's raw request → the SDK's WSGI environ, without h11 (plain heads)
- ``body``         request bodies: JSON and text within the bounds of docs/limits.md (413/415/400)
- ``cpu``          CPU-heavy steps (large bodies, mappings) in native threads, off the event loop
- ``routes``       the catalogue of routes; ``fallback`` answers what no route claims
- ``cors``         CORS headers and preflights
- ``public_url``   the caller-facing URL, from Dify's headers

Response side
- ``guard``        renders failures in the route family's format (``bridge.errors``)
- ``responses``    JSON, HTML and streamed responses
- ``encoding``     gzip for kept bodies (the diagnostics page), when the client accepts it
- ``sse``          Server-Sent Events framing and keep-alives
- ``lines``        the daemon's 5 MiB line: chunks split, large bodies streamed, 413 invocations
- ``sdk``          version-checked SDK seams: unparseable requests → 400, plain heads without
                   h11, one cached TypeAdapter, stdin read without the threadpool, one write
                   per message, helpers on first use, answers by request id, storage calls
                   without the generator layers

Process
- ``heap``         the start-up's objects frozen out of full garbage collections

Outbound
- ``outbound``     signed outbound webhooks for the *Send webhook* tool (and reply calls)
"""
