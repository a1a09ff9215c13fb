"""Configuration: what an endpoint's settings say and who may call it.

- ``settings``     typed, defensively coerced endpoint settings
- ``auth``         API-key authentication (constant time, fails closed)
"""
