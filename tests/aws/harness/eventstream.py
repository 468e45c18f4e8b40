"""AWS event stream messages, encoded as the format defines them (prelude with lengths and CRC,
typed headers, payload, message CRC), for loopback stand-ins of the SageMaker runtime's
InvokeEndpointWithResponseStream. Decoding is botocore's (``EventStreamBuffer``); a test checks
that the two agree."""

from __future__ import annotations

import json
import struct
import zlib


def header(name: str, value: str) -> bytes:
    """An event stream header of type string (7): name length, name, type, value length."""
    raw_name, raw_value = name.encode(), value.encode()
    return (struct.pack("!B", len(raw_name)) + raw_name + b"\x07"
            + struct.pack("!H", len(raw_value)) + raw_value)


def message(headers: dict[str, str], payload: bytes) -> bytes:
    encoded = b"".join(header(k, v) for k, v in headers.items())
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack("!II", total, len(encoded))
    prelude += struct.pack("!I", zlib.crc32(prelude))
    body = prelude + encoded + payload
    return body + struct.pack("!I", zlib.crc32(body))


def payload_part(data: bytes) -> bytes:
    return message({":event-type": "PayloadPart", ":message-type": "event",
                    ":content-type": "application/octet-stream"}, data)


def model_stream_error(text: str) -> bytes:
    body = json.dumps({"Message": text, "ErrorCode": "ModelInvocationTimeExceeded"})
    return message({":exception-type": "ModelStreamError", ":message-type": "exception",
                    ":content-type": "application/json"}, body.encode())
