"""Load benchmark of `lenet serve` on what users send: requests/s and p50/p99 latency at 1, 8 and 32
concurrent clients, against a no-op endpoint of the same stack.

Starts the server on a free loopback port, then drives it from a bounded asyncio load generator
(keep-alive HTTP/1.1, one connection per client) posting one file per request, `--n` files of
one kind in turn (benchmarks/reader_speed.py makes them, from MNIST test digits), each kind in
its own rows, real inputs first:

  drawing   page drawings: 280x280 opaque RGBA PNGs, grey strokes on white (the page's request);
  canvas-transparent  the same drawings as transparent canvas PNGs, the ink as alpha (not by default);
  photo     photo-like files: ~330 px RGB JPEGs;
  scan      scans: 96x96 grey PNGs of real digits;
  phone     phone photos: 2000x1500 JPEGs (not by default: slow);
  mnist     MNIST-form 28x28 PNGs: the reader's shortcut, which skips finding the ink.

Each level runs for at most --seconds or --max-requests, whichever comes first. Then the same
for a server of the same stack (our app, bounds and worker processes) with one more route,
/noop, that reads the body and answers a small JSON: the stack's own limit on this machine with
this client and these bodies. Prints a table, with each worker's CPU seconds in each level (one
near 0 got no connections), and writes JSON when asked.

    python benchmarks/serve_load.py [--kinds drawing,photo,scan,mnist] [--seconds 2] [--workers 2]
    python benchmarks/serve_load.py --kinds drawing --clients 8 --seconds 5 --json /tmp/serve.json
    python benchmarks/serve_load.py --kinds drawing --path /explain --clients 1   # the page's explain request
"""

from __future__ import annotations

import argparse
import asyncio
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
from reader_speed import KINDS, kinds_of, labelled_inputs

NOOP = """
import sys
from fastapi import Request
from fastapi.responses import JSONResponse
from lenet.serving.app import create_app
from lenet.serving.workers import run
app = create_app()

@app.post("/noop")
async def noop(request: Request):
    await request.body()
    return JSONResponse({"digit": 0})

run(app, "127.0.0.1", int(sys.argv[1]), workers=int(sys.argv[2]))
"""


def bodies_of(kinds: list[str], n: int, data_dir: str | None) -> dict[str, list[bytes]]:
    """{kind: `n` encoded files} from reader_speed's makers."""
    made = labelled_inputs(kinds, n, 0, data_dir)
    return {kind: files for kind, (files, _) in made.items()}


def rss_mb(pid: int) -> float:
    """Resident memory of a process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def read_response(reader) -> bytes:
    """Read one HTTP/1.1 response with a Content-Length; its status line."""
    status = await reader.readline()
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    await reader.readexactly(length)
    return status


async def client(port: int, bodies: list[bytes], deadline: float, budget: list[int], latencies: list[float],
                 errors: list, path: str = "/predict"):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    requests = [(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
                 f"Content-Length: {len(body)}\r\n\r\n").encode() + body for body in bodies]
    try:
        while time.perf_counter() < deadline and budget[0] > 0:
            budget[0] -= 1
            t0 = time.perf_counter()
            writer.write(requests[budget[0] % len(requests)])
            await writer.drain()
            status = await read_response(reader)
            latencies.append(time.perf_counter() - t0)
            if b" 200 " not in status:
                errors.append(status.decode().strip())
    finally:
        writer.close()


async def health_probe(port: int, deadline: float, latencies: list[float]):
    """GET /health every 20 ms on a connection of its own, while the clients load the server."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            await read_response(reader)
            latencies.append(time.perf_counter() - t0)
            await asyncio.sleep(0.02)
    finally:
        writer.close()


async def level(port: int, bodies: list[bytes], clients: int, seconds: float, max_requests: int,
                path: str = "/predict") -> dict:
    latencies, errors, budget, health = [], [], [max_requests], []
    t0 = time.perf_counter()
    probe = asyncio.create_task(health_probe(port, t0 + seconds, health))
    await asyncio.gather(*(client(port, bodies, t0 + seconds, budget, latencies, errors, path)
                           for _ in range(clients)))
    wall = time.perf_counter() - t0
    await probe
    lat = np.array(latencies) * 1000
    return {"clients": clients, "requests": len(lat), "errors": len(errors), "seconds": round(wall, 2),
            "requests_per_second": round(len(lat) / wall, 1),
            "p50_ms": round(float(np.percentile(lat, 50)), 2), "p99_ms": round(float(np.percentile(lat, 99)), 2),
            "health_p99_ms": round(float(np.percentile(np.array(health) * 1000, 99)), 2) if health else None}


def measure(command: list[str], port: int, bodies: dict[str, list[bytes]], args,
            path: str) -> tuple[dict[str, list[dict]], float]:
    """Start a server with `command`, load it at each level with each kind's bodies;
    ({kind: rows}, memory at rest in MB, all processes)."""
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not up(server, f"http://127.0.0.1:{port}", 60):
            raise SystemExit(f"the server did not start: {' '.join(command)}")
        time.sleep(0.5)  # every worker up, not only the first
        workers = children(server.pid) or [server.pid]
        rest_mb = sum(rss_mb(p) for p in {server.pid, *workers})
        out = {}
        for kind, files in bodies.items():
            asyncio.run(level(port, files, 1, 1.0, 200, path))  # warm-up
            rows = out[kind] = []
            for c in args.clients.split(","):
                before = [cpu_seconds(p) for p in workers]
                rows.append(asyncio.run(level(port, files, int(c), args.seconds, args.max_requests, path)))
                # Each worker's CPU time in the level: a worker near 0 gets no connections.
                rows[-1]["worker_cpu_s"] = [round(cpu_seconds(p) - b, 2) for p, b in zip(workers, before, strict=False)]
    finally:
        server.terminate()
        server.wait(timeout=10)
    return out, rest_mb


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            pass
    return out


def up(server: subprocess.Popen, url: str, seconds: float) -> bool:
    """Whether `server` answers `url`/health within `seconds` (False at once if it exits)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and server.poll() is None:
        try:
            urllib.request.urlopen(url + "/health", timeout=1)
            return True
        except OSError:
            time.sleep(0.1)
    return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kinds", default="drawing,photo,scan,mnist",
                    help=f"comma-separated input kinds, of {','.join(KINDS)} (default: drawing,photo,scan,mnist)")
    ap.add_argument("--n", type=int, default=50, help="files of each kind, posted in turn (default: 50)")
    ap.add_argument("--seconds", type=float, default=2.0, help="per kind and concurrency level (default: 2)")
    ap.add_argument("--max-requests", type=int, default=20_000, help="per level, a hard bound (default: 20000)")
    ap.add_argument("--clients", default="1,8,32", help="concurrency levels (default: 1,8,32)")
    ap.add_argument("--path", default="/predict", help="the endpoint to POST to (default: /predict)")
    ap.add_argument("--workers", type=int, default=os.cpu_count(), help="server processes (default: the cores)")
    ap.add_argument("--data-dir", help="MNIST folder (default: as for lenet train)")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    if not 1 <= args.n <= 10_000:
        raise SystemExit("--n must be 1 to 10000 (MNIST's test set)")

    kinds = sorted(kinds_of(args.kinds), key=lambda k: k == "mnist")  # real inputs first, the shortcut last
    bodies = bodies_of(kinds, args.n, args.data_dir)
    port = free_port()
    ours, rest_mb = measure([sys.executable, "-m", "lenet", "serve", "--port", str(port), "--workers",
                             str(args.workers)], port, bodies, args, args.path)
    port = free_port()
    noop, _ = measure([sys.executable, "-c", NOOP, str(port), str(args.workers)], port, bodies, args, "/noop")
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"lenet serve --workers {args.workers}, {args.n} files of each kind in turn, POST {args.path}, "
          f"client on the same machine ({machine})")
    print(f"server memory at rest: {rest_mb:.1f} MB resident, all processes")
    for kind in kinds:
        print(f"input: {KINDS[kind][0]}")
        print(f"{'clients':>7} {'requests':>8} {'errors':>6} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
              f"{'/health p99':>11} {'no-op req/s':>11} {'no-op p99':>9} {'share':>6}  worker CPU s")
        for r, n in zip(ours[kind], noop[kind], strict=False):
            print(f"{r['clients']:>7} {r['requests']:>8} {r['errors']:>6} {r['requests_per_second']:>8} "
                  f"{r['p50_ms']:>7} {r['p99_ms']:>7} {r['health_p99_ms']:>11} {n['requests_per_second']:>11} "
                  f"{n['p99_ms']:>9} {r['requests_per_second'] / n['requests_per_second']:>6.0%}  "
                  f"{' + '.join(map(str, r['worker_cpu_s']))}")
            r["noop"] = n
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(
            {"machine": machine, "workers": args.workers, "path": args.path, "files_per_kind": args.n,
             "rest_rss_mb": rest_mb,
             "inputs": [{"kind": kind, "input": KINDS[kind][0], "levels": ours[kind]} for kind in kinds]},
            indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
