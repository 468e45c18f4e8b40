"""A minimal no-work HTTP server (raw ASGI under uvicorn): 200 to every request.

Used by loadgen_throughput.py only when nginx is not installed.

    .venv/bin/python benchmarks/nowork_server.py PORT
"""

from __future__ import annotations

import sys

import uvicorn

BODY = b'{"predictions": [{"class": 0}]}'
START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(BODY)).encode()),
    ],
}
END = {"type": "http.response.body", "body": BODY}


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send(START)
    await send(END)


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), lifespan="off", access_log=False,
                log_level="warning", backlog=4096, timeout_keep_alive=75)
