"""App Bridge core: everything the endpoints do, importable without a running Dify.

Data flows one way: HTTP request -> route adapter (``endpoints/`` → ``adapter``) -> a
protocol module -> app gateway -> events -> response writer. Modules, one job each:

Plumbing
- ``adapter``      what every Endpoint calls: request → Call → handler → response (+ CORS)
- ``call``         one request as the core sees it (settings, headers, body, gateway, records)
- ``settings``     typed, defensively coerced endpoint settings
- ``auth``         API-key authentication (constant time, fails closed)
- ``errors``       the error envelope of each route family; ``guard`` renders failures
- ``body``         request bodies: JSON and text within the bounds of docs/limits.md (413/415/400)
- ``cpu``          CPU-heavy steps (large bodies, mappings) in native threads, off the event loop
- ``responses``    JSON, HTML and streamed responses
- ``lines``        the daemon's 5 MiB line: chunks split, large bodies streamed, 413 invocations
- ``sdk``          version-checked SDK seams: unparseable requests → 400, one cached TypeAdapter,
                   stdin read without the threadpool, one write per message
- ``sse``          Server-Sent Events framing and keep-alives
- ``cors``         CORS headers and preflights
- ``routes``       the catalogue of routes; ``fallback`` answers what no route claims
- ``public_url``   the caller-facing URL, from Dify's headers; ``diagnostics`` the ``GET /`` page
- ``guides``       per-platform setup guides shown on the diagnostics page

App gateway
- ``gateway``      invoke (always streaming), failure translation, mode memory, fetch_app cache
- ``aggregate``    Dify's blocking shapes from a stream; answer text of a result

Protocols
- ``service_api``  Dify Service-API facade (+ ``conversations``: ownership)
- ``openai_api``   OpenAI facade (+ ``transcripts``: continuity for stateless clients)
- ``openai_responses`` OpenAI Responses API (+ ``response_store``: response ids → conversations)
- ``extension``    Dify API-based Extension (+ ``moderation``, ``singleflight``)
- ``webhook``      webhook receiver (+ ``verifiers/`` one module per provider, ``mapping``,
                   ``idempotency``)
- ``continuation`` deferred webhook runs: signed self-calls through the daemon, single use,
                   bounded concurrency, fallback memory
- ``outbound``     signed outbound webhooks for the *Send webhook* tool (and reply calls)
- ``replies``      reply channels of two-way webhooks, one module per platform (+ presets)

Storage
- ``records``      expiring JSON records and buckets, namespaced (injectively) by endpoint;
                   ``Memory``: what the process already knows of immutable records
- ``slots``        bounded stores over records: ``BucketStore`` (one get per lookup, one
                   get + set per change) and the older write-once two-choice ``SlotStore``
- ``overlap``      storage writes run beside the app's own latency, settled before the end
"""
