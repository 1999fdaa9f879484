"""`kvplan serve`'s HTTP server: uvicorn with the connection limits it lacks.

uvicorn bounds neither the request line nor the headers when it parses with httptools (its header-size
limit applies to h11 only), has no header-count limit, and waits forever for a client that opens a
connection and sends its request a byte at a time. `GuardedHttp` adds those bounds; body sizes are
bounded by the app's own middleware (`kvplan.web.app.BodyLimit`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_URL = 8 * 1024  # bytes of the request target
MAX_HEADER_BYTES = 16 * 1024  # bytes of all header names and values together
MAX_HEADERS = 100  # header fields in one request
REQUEST_TIMEOUT = 15.0  # seconds from the connection (or the previous answer) to the whole request read
KEEP_ALIVE = 5  # seconds an idle keep-alive connection stays open
MAX_CONNECTIONS = 1024  # open connections and running requests together; past it uvicorn answers 503


class _Refused(Exception):
    """Stops the parser after a refusal has been written."""


class GuardedHttp(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing oversized request lines and headers (414, 431) and closing
    connections whose request has not fully arrived within REQUEST_TIMEOUT (a slow-client guard)."""

    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0
        self._header_count = 0

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > MAX_URL:
            self._refuse(414, f"request target over {MAX_URL // 1024} KiB")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value)
        self._header_count += 1
        if self._header_bytes > MAX_HEADER_BYTES or self._header_count > MAX_HEADERS:
            self._refuse(431, f"headers over {MAX_HEADERS} fields or {MAX_HEADER_BYTES // 1024} KiB")
        super().on_header(name, value)

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request on this connection has the same time to arrive

    def send_400_response(self, msg: str) -> None:
        if not self.transport.is_closing():  # a refusal was already written
            super().send_400_response(msg)

    def _refuse(self, status: int, why: str) -> None:
        body = f'{{"detail": "{why}: send less"}}'.encode()
        reason = {414: b"URI Too Long", 431: b"Request Header Fields Too Large"}[status]
        self.transport.write(b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
                             b"connection: close\r\n\r\n%s" % (status, reason, len(body), body))
        self.transport.close()
        raise _Refused(why)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(REQUEST_TIMEOUT, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def config(app: Any, host: str, port: int) -> Any:
    """The uvicorn configuration `kvplan serve` runs (tests start the same one on a free port)."""
    import uvicorn

    return uvicorn.Config(app, host=host, port=port, log_level="warning", http=GuardedHttp,
                          timeout_keep_alive=KEEP_ALIVE, limit_concurrency=MAX_CONNECTIONS)


def serve(app: Any, host: str, port: int) -> None:
    import uvicorn

    settle()
    uvicorn.Server(config(app, host, port)).run()


def settle() -> None:
    """Reads the embedded catalogs once, then moves every object alive (modules, frameworks, the model specs)
    out of the garbage collector's reach (`gc.freeze`): a full collection then walks only what requests made,
    instead of stalling every connection for 25 ms or so (measured under benchmarks/web_load.py)."""
    import gc

    from kvplan.hardware import gpus
    from kvplan.model.catalog import models
    from kvplan.model.load import load_model

    gpus()
    for entry in models():
        load_model(entry.alias)
    gc.collect()
    gc.freeze()
