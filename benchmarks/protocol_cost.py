"""CPU time per request of each HTTP/1.1 parser uvicorn offers, with and without our bounds.

The choice behind serving/guard.py: a header line that never ends must be bounded, either by
counting bytes as they arrive in our httptools protocol (`GuardedProtocol`) or by switching to
uvicorn's h11 protocol, which bounds an unfinished head itself (h11_max_incomplete_event_size).
This feeds one keep-alive connection the same POST /predict of a 300-byte body, in process with
no sockets, through an ASGI app that answers a small JSON at once: what remains is the protocol's
own cost. CPU time (time.process_time), so another program's load on the machine adds little;
each protocol runs --rounds times in turn, and the minimum and median are printed.

    python benchmarks/protocol_cost.py [--requests 5000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import time

from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from lenet.serving.guard import MAX_HEADER_BYTES, GuardedProtocol

PROTOCOLS = {"httptools (uvicorn's)": HttpToolsProtocol, "httptools + our bounds": GuardedProtocol,
             "h11, bounded head": H11Protocol}
BODY = b"\x89PNG" + b"x" * 296
REQUEST = (b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUser-Agent: bench/1.0\r\nAccept: */*\r\n"
           b"Content-Type: image/png\r\nContent-Length: %d\r\n\r\n" % len(BODY)) + BODY


async def app(scope, receive, send):
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"digit": 0}'})


class Transport(asyncio.Transport):
    """Counts what the protocol writes; never pauses."""

    def __init__(self):
        super().__init__()
        self.written, self.closing = 0, False

    def write(self, data):
        self.written += len(data)

    def get_extra_info(self, name, default=None):
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def is_closing(self):
        return self.closing

    def close(self):
        self.closing = True

    def pause_reading(self):
        pass

    def resume_reading(self):
        pass


async def microseconds_per_request(protocol, requests: int) -> float:
    config = Config(app, log_level="warning", access_log=False, h11_max_incomplete_event_size=MAX_HEADER_BYTES)
    config.load()
    state = ServerState()
    connection = protocol(config=config, server_state=state, app_state={})
    transport = Transport()
    connection.connection_made(transport)
    t0 = time.process_time()
    for _ in range(requests):
        before = transport.written
        connection.data_received(REQUEST)
        for _ in range(1000):  # the response is written within a few turns of the loop
            if transport.written > before and not state.tasks:
                break
            await asyncio.sleep(0)
        else:
            raise RuntimeError(f"{protocol.__name__} did not answer")
    seconds = time.process_time() - t0
    assert not transport.closing, f"{protocol.__name__} closed the connection"
    connection.connection_lost(None)
    return seconds / requests * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=5000, help="per round (default: 5000)")
    ap.add_argument("--rounds", type=int, default=5, help="of each protocol, in turn (default: 5)")
    args = ap.parse_args()
    times: dict[str, list[float]] = {name: [] for name in PROTOCOLS}
    for _ in range(args.rounds):
        for name, protocol in PROTOCOLS.items():
            times[name].append(asyncio.run(microseconds_per_request(protocol, args.requests)))
    print(f"CPU microseconds per keep-alive POST (Python {platform.python_version()}, {platform.machine()})")
    for name, values in times.items():
        values.sort()
        print(f"{name:24s} min {values[0]:7.1f}  median {values[len(values) // 2]:7.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
