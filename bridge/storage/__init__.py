"""Storage: what App Bridge keeps in the plugin's storage, and how few round trips it costs.

- ``records``      expiring JSON records and buckets, namespaced (injectively) by endpoint;
                   ``Memory``: what the process already knows of immutable records
- ``slots``        bounded stores over records: ``BucketStore`` (one get per lookup, one
                   get + set per change) and the older write-once two-choice ``SlotStore``
- ``conversations`` Service-API conversation ownership
- ``transcripts``  conversation continuity for stateless OpenAI clients
- ``response_store`` Responses API ids → conversations
- ``idempotency``  webhook delivery dedupe
- ``overlap``      storage writes run beside the app's own latency, settled before the end
"""
