"""Servers that speak SageMaker's container contract (``GET /ping``, ``POST /invocations``).

- ``container``: hosts a user's ``inference.py`` like SageMaker's framework containers
  (gunicorn, one pre-forked worker per CPU of the profile).
- ``synthetic``: an endpoint of known capacity (slots / service time) for tests and benchmarks.

Both run as ``python -m rightsizer.serving.<name>``; ``rightsizer.endpoints.local`` starts them.
"""
