"""Protocols: each face App Bridge shows, from a ``Call`` to the app gateway and back.

- ``service_api``  Dify Service-API facade (+ ``storage.conversations``: ownership)
- ``openai_api``   OpenAI facade (+ ``storage.transcripts``: continuity for stateless clients)
- ``openai_responses`` OpenAI Responses API (+ ``storage.response_store``: ids → conversations)
- ``extension``    Dify API-based Extension (+ ``moderation``, ``bridge.singleflight``)
- ``moderation``   moderation decisions: pre-compiled keyword matcher, app-as-judge contract
- ``webhook``      webhook receiver (+ ``bridge/verifiers/``, ``mapping``,
                   ``storage.idempotency``, ``bridge/replies/``)
- ``mapping``      webhook payload → app inputs, query and user (JMESPath, bounded, off the loop)
- ``continuation`` deferred webhook runs: signed self-calls through the daemon, single use,
                   bounded concurrency, fallback memory
- ``diagnostics``  the ``GET /`` page; ``guides`` per-platform setup guides shown on it
"""
