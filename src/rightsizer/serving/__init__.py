"""Servers that speak SageMaker's container contract (``GET /ping``, ``POST /invocations``).

- ``container``: hosts a user's ``inference.py`` like SageMaker's framework containers: a
  front process holding the connections, one model worker process per CPU of the profile.
- ``synthetic``: an endpoint of known capacity (slots / service time) for tests and benchmarks.

Both run as ``python -m rightsizer.serving.<name>``; ``rightsizer.endpoints.local`` starts them.
"""
