"""App Bridge core: everything the endpoints do, importable without a running Dify.

Data flows one way: HTTP request -> route adapter (``endpoints/`` → ``adapter``) ->
a protocol module -> app gateway -> events -> response writer (and, for deferred webhook runs,
-> reply channel). The top and the ground of that flow are modules of their own:

- ``adapter``      what every Endpoint calls: request → ``Call`` → handler → response (+ CORS)
- ``call``         one request as the core sees it (settings, headers, body, gateway, records)
- ``errors``       ``BridgeError`` and the error envelope of each route family (imports nothing
                   of the bridge, so every layer may raise it)
- ``singleflight`` one run for concurrent identical requests (extension, idempotency)
- ``background``   work beside the request (a stream's pump, an overlapped write, a held
                   self-call), started one way: a greenlet under the SDK's gevent

Between them the core is grouped by layer; each subpackage's ``__init__`` lists its modules,
one job each:

- ``config/``      typed endpoint settings and API-key authentication
- ``transport/``   HTTP in and out: bodies, responses, SSE, CORS, the 5 MiB line, SDK seams,
                   routes, the failure guard; and signed outbound
                   HTTP (the *Send webhook* tool and reply calls)
- ``app/``         the app gateway: invoking the Dify app, and blocking shapes from its stream
- ``protocols/``   the faces: Service API, OpenAI (Chat Completions, Responses), API-based
                   Extension, webhook receiver (+ mapping, continuation), diagnostics page
- ``storage/``     expiring records, bucket stores and what lives in them: conversations,
                   transcripts, idempotency, response ids; storage writes overlapped with the app
- ``verifiers/``   webhook signature schemes, one module per provider behind one interface
- ``replies/``     reply channels of two-way webhooks, one module per platform (+ presets)
"""
