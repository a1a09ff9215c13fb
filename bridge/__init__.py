"""App Bridge core: everything the endpoints do, importable without a running Dify.

Data flows one way: HTTP request -> route adapter (``endpoints/`` → ``transport.adapter``) ->
a protocol module -> app gateway -> events -> response writer (and, for deferred webhook runs,
-> reply channel). The core is grouped by layer; each subpackage's ``__init__`` lists its
modules, one job each:

- ``config/``      typed endpoint settings and API-key authentication
- ``transport/``   a daemon request into a ``Call`` and a response back: adapter, bodies, errors,
                   responses, SSE, CORS, the 5 MiB line, SDK seams, routes; and signed outbound
                   HTTP (the *Send webhook* tool and reply calls)
- ``app/``         the app gateway: invoking the Dify app, and blocking shapes from its stream
- ``protocols/``   the faces: Service API, OpenAI (Chat Completions, Responses), API-based
                   Extension, webhook receiver (+ mapping, continuation), diagnostics page
- ``storage/``     expiring records, bucket stores and what lives in them: conversations,
                   transcripts, idempotency, response ids; storage writes overlapped with the app
- ``verifiers/``   webhook signature schemes, one module per provider behind one interface
- ``replies/``     reply channels of two-way webhooks, one module per platform (+ presets)
"""
