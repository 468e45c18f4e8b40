"""rightsizer: find the cheapest way to serve a model on SageMaker real-time endpoints."""

__version__ = "0.1.0"
