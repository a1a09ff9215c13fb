"""App Bridge core: everything the endpoints do, importable without a running Dify.

Data flows one way: HTTP request -> route adapter (``endpoints/``) -> this package ->
app gateway -> events -> response writer. Modules, one job each:

- ``adapter``    what every Endpoint calls: request → Call → handler → response (+ CORS)
- ``settings``   typed, defensively coerced endpoint settings
- ``auth``       API-key authentication (constant time, fails closed)
- ``errors``     the error envelope of each route family
- ``guard``      the one place exceptions become responses
- ``fallback``   404/405 for paths and methods no route claims
- ``responses``  JSON and streamed werkzeug responses
- ``sse``        Server-Sent Events framing and keep-alives
- ``records``    storage records namespaced by endpoint, with expiry
- ``public_url`` the caller-facing URL of the endpoint, from Dify's headers
- ``routes``     the catalogue of routes this plugin serves
- ``diagnostics`` the ``GET /`` page
"""
