"""Reading a botocore ``ClientError`` as AWS answers it: by its code, the message only where the
code is ambiguous."""

from __future__ import annotations

from typing import Any


def error_code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def error_message(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Message", ""))


def describe_error(exc: Any) -> str:
    """``Code: message``, for a person."""
    return f"{error_code(exc)}: {error_message(exc)}"


# SageMaker answers ValidationException both for a resource that does not exist ("Could not
# find endpoint ...") and for one in a state that forbids the call ("Cannot update in-progress
# endpoint"), as for malformed requests: only the message tells these apart.
def sagemaker_not_found(exc: Any) -> bool:
    code = error_code(exc)
    if code == "ResourceNotFound":
        return True
    return code == "ValidationException" and error_message(exc).startswith("Could not find")


def sagemaker_busy(exc: Any) -> bool:
    return error_code(exc) == "ValidationException" and error_message(exc).startswith("Cannot ")
