"""What keeps `lenet serve` up under abuse: limits on connections and on each request.

Two layers. The HTTP protocol (`GuardedProtocol`, uvicorn's httptools protocol
with limits added) bounds what reaches the application at all: request header
size (431, counted as the bytes arrive), the time a client may take to send its
request (408, so slow or idle connections cannot pile up), the time a response
may wait for the client to read it (the connection is dropped), the requests
one connection may pipeline, and the number of open connections (503; a
connection stalled on a client that does not read gives its place up first).
The ASGI middleware (`Guard`) then checks each request: the Host header (one,
naming the address the server is bound to: DNS rebinding), the Origin and
Sec-Fetch-Site headers of POSTs (a web page elsewhere must not use the API
through a visitor's browser) and the body size (413, by header or while
streaming). Every refusal is a short JSON error.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, cast
from urllib.parse import urlsplit

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

if TYPE_CHECKING:
    from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

MAX_BODY = 5 * 1024 * 1024    # bytes per request body
MAX_HEADER_BYTES = 16 * 1024  # request line and headers together; browsers send about 1 KB
REQUEST_TIMEOUT = 10.0        # seconds to send a whole request once a connection opens or a request begins,
                              # and that an answer may wait for the client to read it
KEEP_ALIVE = 5                # seconds an idle keep-alive connection stays open
# open connections; past it one stalled on a client that does not read is dropped, else 503
MAX_CONNECTIONS = 256
MAX_PIPELINED = 16            # requests one connection may have waiting for their answers
LOOPBACK = {"localhost", "127.0.0.1", "[::1]", "::1"}
WILDCARD = {"0.0.0.0", "::", ""}
REASONS = {400: b"Bad Request", 403: b"Forbidden", 408: b"Request Timeout", 413: b"Content Too Large",
           421: b"Misdirected Request", 431: b"Request Header Fields Too Large", 503: b"Service Unavailable"}


def error_response(status: int, message: str) -> bytes:
    """A complete HTTP/1.1 response that closes the connection."""
    body = json.dumps({"error": message}).encode()
    return (b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n" % (status, REASONS[status], len(body))) + body


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a request already answered."""


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with bounds: header bytes, time to send a request, time a response
    may wait for the client to read it, pipelined requests, connections."""

    max_header_bytes = MAX_HEADER_BYTES
    request_timeout = REQUEST_TIMEOUT
    write_timeout = REQUEST_TIMEOUT
    max_connections = MAX_CONNECTIONS
    max_pipelined = MAX_PIPELINED

    @classmethod
    def with_limits(cls, request_timeout: float, max_connections: int) -> type[GuardedProtocol]:
        return type("GuardedProtocol", (cls,), {"request_timeout": request_timeout, "write_timeout": request_timeout,
                                                "max_connections": max_connections})

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._refused = False
        self._header_bytes = 0  # the request line and headers httptools handed over, this request
        self._head_bytes = 0    # the bytes received since the last request ended, not yet a whole head
        self._in_head = True
        self._completed = 0
        self._timer: asyncio.TimerHandle | None = None
        self._write_timer: asyncio.TimerHandle | None = None
        self._paused_at = 0.0
        # the cycle whose application task runs: with pipelining, not always self.cycle
        self._running: RequestResponseCycle | None = None
        if len(self.connections) > self.max_connections and not self._evict_a_stalled_connection():
            self._refuse(503, f"over {self.max_connections} open connections; try again shortly")
            return
        self._arm()  # a connection that never sends a byte is closed too

    def connection_lost(self, exc) -> None:
        self._disarm()
        self._resumed()
        self._gone()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # uvicorn's, except that a request refused from a callback is not answered a second time,
        # and the bytes of a head are counted as they arrive: httptools holds a header line until
        # it ends, so a line that never ends reaches no callback.
        if self._refused:
            return
        self._unset_keepalive_if_required()
        if self._timer is None and (self.cycle is None or self.cycle.response_complete):
            self._arm()  # bytes between requests (blank lines) get no more time than a request
        try:
            while data:
                if not self._in_head:
                    self.parser.feed_data(data)
                    break
                room = self.max_header_bytes - self._head_bytes
                if room <= 0:
                    self._refuse(431, f"request line and headers over {self.max_header_bytes:,} bytes")
                    return
                part, data = data[:room], data[room:]
                completed = self._completed
                self.parser.feed_data(part)
                if self._in_head and self._completed == completed:  # all of `part` is this head's
                    self._head_bytes += len(part)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError:
            if not self._refused:
                self._refuse(400, "invalid HTTP request")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0
        if self._timer is None:
            self._arm()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        if self.cycle is not None and not self.cycle.response_complete and len(self.pipeline) + 1 >= self.max_pipelined:
            # Enough waiting: those are answered, then the connection closes and the client sends
            # the rest again on a new one (RFC 9112 9.3.2), as after any server's keep-alive limit.
            self.cycle.keep_alive = False
            self._refused = True
            self._disarm()
            raise _Refused
        super().on_headers_complete()
        if not self.pipeline:
            self._running = self.cycle

    def on_message_complete(self) -> None:
        self._disarm()  # the whole request is in: the application's time is not the client's
        self._in_head, self._head_bytes, self._completed = True, 0, self._completed + 1
        super().on_message_complete()

    def pause_writing(self) -> None:
        super().pause_writing()
        self._arm_drop()

    def resume_writing(self) -> None:
        if not self.transport.is_closing():  # closing, it waits for the whole buffer to go: still bounded
            self._resumed()
        super().resume_writing()

    def on_response_complete(self) -> None:
        if self.pipeline and not self.transport.is_closing():
            self._running = self.pipeline[-1][0]  # the one uvicorn starts next
        super().on_response_complete()
        self._bound_close()

    def timeout_keep_alive_handler(self) -> None:
        super().timeout_keep_alive_handler()
        self._bound_close()

    def _bound_close(self) -> None:
        """A closing transport stays open until the client has read all that is buffered: at most write_timeout."""
        if self.transport.is_closing() and self.transport.get_write_buffer_size():
            self._arm_drop()

    def _arm_drop(self) -> None:
        if self._write_timer is None:
            self._paused_at = self.loop.time()
            self._write_timer = self.loop.call_later(self.write_timeout, self._drop)

    def _resumed(self) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    def _drop(self) -> None:
        """Close a connection whose client stopped reading; abort, as close() waits to send what is buffered."""
        self._write_timer = None
        self._refused = True
        self._disarm()
        self._gone()
        self.transport.abort()

    def _gone(self) -> None:
        """Tell every request of this connection that the client is gone, so none writes to a closed
        transport (uvicorn tells only the newest; uvloop raises on such a write)."""
        for cycle in [self._running, self.cycle, *(cycle for cycle, _ in self.pipeline)]:
            if cycle is not None and not cycle.response_complete:
                cycle.disconnected = True
                cycle.message_event.set()

    def _evict_a_stalled_connection(self) -> bool:
        """Make room by dropping the connection that has waited longest on a client that does not read."""
        # uvicorn types the set as any of its protocols; on this server every one is ours
        stalled = cast("list[GuardedProtocol]",
                       [p for p in self.connections if getattr(p, "_write_timer", None) is not None])
        if not stalled:
            return False
        min(stalled, key=lambda p: p._paused_at)._drop()
        return True

    def _count(self, n: int) -> None:
        self._header_bytes += n
        if self._header_bytes > self.max_header_bytes:
            self._refuse(431, f"request line and headers over {self.max_header_bytes:,} bytes")
            raise _Refused

    def _arm(self) -> None:
        self._timer = self.loop.call_later(self.request_timeout, self._timed_out)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _timed_out(self) -> None:
        self._timer = None
        self._refuse(408, f"the request was not sent within {self.request_timeout:g} s")

    def _refuse(self, status: int, message: str) -> None:
        self._refused = True
        if self.transport.is_closing():
            return
        if self.cycle is None or not self.cycle.response_started:
            self.transport.write(error_response(status, message))
        self.transport.close()
        self._bound_close()


def allowed_hosts(bind_host: str) -> set[str] | None:
    """Host header values to answer: the bound address and, on loopback, its names; None: any
    (a server bound to every interface was exposed on purpose, under names we cannot know)."""
    if bind_host in WILDCARD:
        return None
    return LOOPBACK | {bind_host.lower(), f"[{bind_host.lower()}]"}


def host_name(host: str) -> str:
    """'127.0.0.1:8000' -> '127.0.0.1', '[::1]:8000' -> '[::1]'."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[:host.find("]") + 1]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class Guard:
    """ASGI middleware: Host, Origin and body-size checks before a request reaches a route."""

    def __init__(self, app, hosts: set[str] | None, limit: int = MAX_BODY):
        self.app, self.hosts, self.limit = app, hosts, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        hosts = [value for name, value in scope["headers"] if name == b"host"]
        if len(hosts) > 1:  # proxies and we could each read a different one
            return await refuse(send, 400, f"{len(hosts)} Host headers; a request has one")
        host = headers.get(b"host", b"").decode("latin-1")
        if self.hosts is not None and host_name(host) not in self.hosts:
            return await refuse(send, 421, f"this server does not answer for host {host[:100]!r}")
        if scope["method"] not in ("GET", "HEAD", "OPTIONS"):
            sites = [v.decode("latin-1").strip().lower() for n, v in scope["headers"] if n == b"sec-fetch-site"]
            origins = [v.decode("latin-1") for n, v in scope["headers"] if n == b"origin"]
            if any(site and site not in ("same-origin", "none") for site in sites):
                return await refuse(send, 403, "cross-site requests are refused: call the API from this "
                                               "server's own page or from a program")
            if any(urlsplit(origin).netloc.lower() != host.lower() for origin in origins):
                return await refuse(send, 403, "requests from another origin are refused")
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            return await refuse(send, 413, f"request body over {self.limit:,} bytes")
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except BodyTooLarge:
            await refuse(send, 413, f"request body over {self.limit:,} bytes")


class BodyTooLarge(Exception):
    """A streamed body went over the limit; routes let it through so Guard answers 413."""


async def refuse(send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
