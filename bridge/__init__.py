"""App Bridge core: everything the endpoints do, importable without a running Dify.

Data flows one way: HTTP request -> route adapter (``endpoints/`` → ``adapter``) -> a
protocol module -> app gateway -> events -> response writer. Modules, one job each:

Plumbing
- ``adapter``      what every Endpoint calls: request → Call → handler → response (+ CORS)
- ``call``         one request as the core sees it (settings, headers, body, gateway, records)
- ``settings``     typed, defensively coerced endpoint settings
- ``auth``         API-key authentication (constant time, fails closed)
- ``errors``       the error envelope of each route family; ``guard`` renders failures
- ``body``         JSON request bodies (413/415/400)
- ``responses``    JSON, HTML and streamed responses (large bodies always streamed)
- ``sse``          Server-Sent Events framing and keep-alives
- ``cors``         CORS headers and preflights
- ``routes``       the catalogue of routes; ``fallback`` answers what no route claims
- ``public_url``   the caller-facing URL, from Dify's headers; ``diagnostics`` the ``GET /`` page

App gateway
- ``gateway``      invoke (always streaming), failure translation, mode memory, fetch_app cache
- ``aggregate``    Dify's blocking shapes from a stream; answer text of a result

Protocols
- ``service_api``  Dify Service-API facade (+ ``conversations``: ownership)
- ``openai_api``   OpenAI facade (+ ``transcripts``: continuity for stateless clients)
- ``extension``    Dify API-based Extension (+ ``moderation``, ``singleflight``)
- ``webhook``      webhook receiver (+ ``verifiers/`` one module per provider, ``mapping``,
                   ``idempotency``)
- ``continuation`` deferred webhook runs: signed self-calls through the daemon, single use,
                   bounded concurrency, fallback memory
- ``outbound``     signed outbound webhooks for the *Send webhook* tool (and reply calls)
- ``replies``      reply channels of two-way webhooks, one module per platform (+ presets)

Storage
- ``records``      expiring JSON records namespaced by endpoint (never overwritten)
- ``slots``        bounded two-choice slot store over records
"""
