"""Locust glue: open-loop rate control, HTTP and SigV4-signed SageMaker users, worker processes.

Locust (and gevent's monkey-patching) is imported only inside the load-generator worker
processes, never in the controlling process, so the CLI and pipeline keep normal threads.
"""
