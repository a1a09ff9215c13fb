"""App gateway: the one way the core reaches the Dify app.

- ``gateway``      invoke (always streaming), failure translation, mode memory, fetch_app cache
- ``aggregate``    Dify's blocking shapes from a stream; answer text of a result
- ``dify_order``   Dify's key order for events and blocking bodies (the daemon sorts keys)
"""
