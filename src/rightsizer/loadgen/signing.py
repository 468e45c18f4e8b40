"""SigV4 headers for SageMaker runtime ``InvokeEndpoint`` without boto3 on the hot path.

boto3's client spends most of a core on one request's bookkeeping (about 1,300 requests per
second per core). A SigV4 signature only changes with the second-resolution ``X-Amz-Date``,
the credentials and the body, so we sign each payload once per second with botocore's own
``SigV4Auth`` and reuse the headers for every request of that second.
"""

from __future__ import annotations

import time
from urllib.parse import quote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.session import Session

from rightsizer.loadgen.target import SageMakerTarget, runtime_url
from rightsizer.payloads import LoadedPayload


def runtime_base_url(target: SageMakerTarget) -> str:
    return runtime_url(target.region, target.endpoint_url)


def invocation_path(target: SageMakerTarget) -> str:
    return f"/endpoints/{quote(target.endpoint_name, safe='')}/invocations"


class CachedSigner:
    """Signed headers per payload, refreshed when the second (or the credentials) changes."""

    def __init__(self, target: SageMakerTarget, payloads: list[LoadedPayload]) -> None:
        credentials = Session().get_credentials()
        if credentials is None:
            raise RuntimeError(
                "no AWS credentials found for signing SageMaker requests: set them in the "
                "environment, a profile, or the task role"
            )
        self._credentials = credentials
        self._region = target.region
        self._url = runtime_base_url(target).rstrip("/") + invocation_path(target)
        self._payloads = payloads
        self._second = -1
        self._headers: list[dict[str, str]] = []

    def headers(self, index: int) -> dict[str, str]:
        now = int(time.time())
        if now != self._second:
            frozen = self._credentials.get_frozen_credentials()
            self._headers = [self._sign(p, frozen) for p in self._payloads]
            self._second = now
        return self._headers[index]

    def _sign(self, payload: LoadedPayload, frozen: object) -> dict[str, str]:
        headers = {"Content-Type": payload.content_type, "Accept": payload.accept or "*/*"}
        request = AWSRequest(method="POST", url=self._url, data=payload.body, headers=headers)
        SigV4Auth(frozen, "sagemaker", self._region).add_auth(request)
        return dict(request.headers.items())
