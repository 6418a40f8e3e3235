"""Load benchmark of `lenet serve`: requests/s and p50/p99 latency at 1, 8 and 32 concurrent clients.

Starts the server on a free loopback port, then drives it from a bounded
asyncio load generator (keep-alive HTTP/1.1, one connection per client)
posting one 28x28 PNG per request. Each level runs for at most --seconds or
--max-requests, whichever comes first. Prints a table and writes JSON.

    python benchmarks/serve_load.py [--seconds 5] [--json benchmarks/results/serve.json]
    python benchmarks/serve_load.py --path /explain --clients 1   # the drawing page's request
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np


def digit_png() -> bytes:
    """A 28x28 PNG of a drawn-looking digit (a thick ring: a zero), white on black."""
    from PIL import Image, ImageDraw

    im = Image.new("L", (28, 28), 0)
    ImageDraw.Draw(im).ellipse((8, 5, 20, 23), outline=255, width=3)
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def rss_mb(pid: int) -> float:
    """Resident memory of a process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def client(port: int, body: bytes, deadline: float, budget: list[int], latencies: list[float], errors: list,
                 path: str = "/predict"):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    try:
        while time.perf_counter() < deadline and budget[0] > 0:
            budget[0] -= 1
            t0 = time.perf_counter()
            writer.write(head + body)
            await writer.drain()
            status = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - t0)
            if b" 200 " not in status:
                errors.append(status.decode().strip())
    finally:
        writer.close()


async def level(port: int, body: bytes, clients: int, seconds: float, max_requests: int,
                path: str = "/predict") -> dict:
    latencies, errors, budget = [], [], [max_requests]
    t0 = time.perf_counter()
    await asyncio.gather(*(client(port, body, t0 + seconds, budget, latencies, errors, path) for _ in range(clients)))
    wall = time.perf_counter() - t0
    lat = np.array(latencies) * 1000
    return {"clients": clients, "requests": len(lat), "errors": len(errors), "seconds": round(wall, 2),
            "requests_per_second": round(len(lat) / wall, 1),
            "p50_ms": round(float(np.percentile(lat, 50)), 2), "p99_ms": round(float(np.percentile(lat, 99)), 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5.0, help="per concurrency level (default: 5)")
    ap.add_argument("--max-requests", type=int, default=20_000, help="per level, a hard bound (default: 20000)")
    ap.add_argument("--clients", default="1,8,32", help="concurrency levels (default: 1,8,32)")
    ap.add_argument("--path", default="/predict", help="the endpoint to POST to (default: /predict)")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "lenet", "serve", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        rest_mb = rss_mb(server.pid)
        body = digit_png()
        asyncio.run(level(port, body, 1, 1.0, 200, args.path))  # warm-up
        rows = [asyncio.run(level(port, body, int(c), args.seconds, args.max_requests, args.path))
                for c in args.clients.split(",")]
    finally:
        server.terminate()
        server.wait(timeout=10)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"lenet serve, one 28x28 PNG per POST {args.path}, client on the same machine ({machine})")
    print(f"server memory at rest: {rest_mb:.1f} MB resident")
    print(f"{'clients':>7} {'requests':>8} {'errors':>6} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7}")
    for r in rows:
        print(f"{r['clients']:>7} {r['requests']:>8} {r['errors']:>6} {r['requests_per_second']:>8} "
              f"{r['p50_ms']:>7} {r['p99_ms']:>7}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"machine": machine, "rest_rss_mb": rest_mb, "levels": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
