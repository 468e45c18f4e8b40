"""Endpoints the pipeline deploys, load-tests and deletes: local processes or SageMaker."""
