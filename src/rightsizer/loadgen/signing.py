"""SigV4 headers for the SageMaker runtime without boto3 on the hot path.

boto3's client spends most of a core on one request's bookkeeping (about 1,300 requests per
second per core). A SigV4 signature only changes with the second-resolution ``X-Amz-Date``,
the credentials, the path and the body, so we sign each payload once per second with
botocore's own ``SigV4Auth`` and reuse the headers for every request of that second.

A payload is sent to ``InvokeEndpoint`` or, when it asks for a stream, to
``InvokeEndpointWithResponseStream``; each operation has its own path and its own name for the
Accept header (botocore's ``sagemaker-runtime`` model: ``Accept`` and
``X-Amzn-SageMaker-Accept``).
"""

from __future__ import annotations

import time
from urllib.parse import quote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.session import Session

from rightsizer.loadgen.streaming import UNCOMPRESSED
from rightsizer.loadgen.target import SageMakerTarget, runtime_url
from rightsizer.payloads import LoadedPayload


def runtime_base_url(target: SageMakerTarget) -> str:
    return runtime_url(target.region, target.endpoint_url)


def invocation_path(target: SageMakerTarget, stream: bool = False) -> str:
    operation = "invocations-response-stream" if stream else "invocations"
    return f"/endpoints/{quote(target.endpoint_name, safe='')}/{operation}"


def request_headers(payload: LoadedPayload) -> dict[str, str]:
    """The headers to sign for ``payload``'s operation."""
    if not payload.stream:
        return {"Content-Type": payload.content_type, "Accept": payload.accept or "*/*"}
    headers = {"Content-Type": payload.content_type, **UNCOMPRESSED}
    if payload.accept:
        headers["X-Amzn-SageMaker-Accept"] = payload.accept
    return headers


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
        base = runtime_base_url(target).rstrip("/")
        self._urls = [base + invocation_path(target, p.stream) for p in payloads]
        self._payloads = payloads
        self._second = -1
        self._headers: list[dict[str, str]] = []

    def headers(self, index: int) -> dict[str, str]:
        now = int(time.time())
        if now != self._second:
            frozen = self._credentials.get_frozen_credentials()
            pairs = zip(self._payloads, self._urls, strict=True)
            self._headers = [self._sign(payload, url, frozen) for payload, url in pairs]
            self._second = now
        return self._headers[index]

    def _sign(self, payload: LoadedPayload, url: str, frozen: object) -> dict[str, str]:
        request = AWSRequest(
            method="POST", url=url, data=payload.body, headers=request_headers(payload)
        )
        SigV4Auth(frozen, "sagemaker", self._region).add_auth(request)
        return dict(request.headers.items())
