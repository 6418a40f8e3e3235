"""`/predict` latency while `lenet serve --learn` fine-tunes in the background, against its quiet figure.

Starts `lenet serve --learn` on a free loopback port with an empty samples folder, and one client
sends page drawings (280x280 RGBA canvas PNGs, reader_speed's maker) to /predict, one request at
a time, as the page does. Each round: --quiet requests with nothing else running in the server,
then three corrections (POST /teach), which start a fine-tune (`lenet teach` in a child process,
one thread, lower priority), and /predict requests until the new model is swapped in. Quiet and
learning phases alternate, so load from outside falls on both alike. Prints the median and p90
latency of each kind of phase and their ratio; writes JSON when asked.

    python benchmarks/teach_serve.py --rounds 2 --json benchmarks/results/teach-serve.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from reader_speed import labelled_inputs
from serve_load import free_port, up

LEARN_DEADLINE = 600  # seconds a fine-tune may take before the run gives up: a busy machine


def post(url: str, body: bytes) -> dict:
    req = urllib.request.Request(url, data=body, headers={"content-type": "image/png"}, method="POST")
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)


def timed_predict(url: str, body: bytes) -> float:
    t0 = time.perf_counter()
    answer = post(url + "/predict", body)
    seconds = time.perf_counter() - t0
    if "digit" not in answer:
        raise SystemExit(f"/predict answered {answer}")
    return seconds


def learning(url: str) -> dict:
    with urllib.request.urlopen(url + "/model", timeout=60) as r:
        return json.load(r)


def start(samples: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "lenet", "serve", "--learn", "--samples", str(samples),
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    if not up(proc, url, 120):
        proc.kill()
        raise SystemExit("lenet serve --learn did not start")
    return proc, url


def one_round(url: str, bodies: list[bytes], labels: np.ndarray, quiet: int, max_learning: int) -> dict:
    quiet_s = [timed_predict(url, bodies[i % len(bodies)]) for i in range(quiet)]
    for i in range(3):
        post(url + f"/teach?label={int(labels[i])}", bodies[i])
    t0, during = time.monotonic(), []
    while learning(url)["learning"]["training"]:
        for _ in range(5):
            during.append(timed_predict(url, bodies[len(during) % len(bodies)]))
        if time.monotonic() - t0 > LEARN_DEADLINE or len(during) >= max_learning:
            raise SystemExit(f"the fine-tune did not finish within {LEARN_DEADLINE} s or {max_learning} requests")
    model = learning(url)
    return {"quiet": quiet_s, "learning": during, "learn_seconds": round(time.monotonic() - t0, 1),
            "answering": model["answering"], "failed": model["learning"]["failed"]}


def stats(seconds: list[float]) -> dict:
    ms = np.array(seconds) * 1e3
    return {"n": len(ms), "median_ms": round(float(np.median(ms)), 2), "p90_ms": round(float(np.percentile(ms, 90)), 2)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=2, help="quiet phase, corrections, learning phase (default: 2)")
    p.add_argument("--quiet", type=int, default=100, help="/predict requests in each quiet phase (default: 100)")
    p.add_argument("--max-learning", type=int, default=20_000, help="bound on requests in one learning phase")
    p.add_argument("--data-dir", help="MNIST, for the drawings (default: as lenet train finds it)")
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args()

    (bodies, labels), = labelled_inputs(["drawing"], 30, 0, args.data_dir).values()
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start(Path(tmp) / "samples")
        try:
            for body in bodies[:5]:
                timed_predict(url, body)  # warm-up
            rounds = [one_round(url, bodies, labels[3 * r:], args.quiet, args.max_learning)
                      for r in range(args.rounds)]
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    quiet = stats([s for r in rounds for s in r["quiet"]])
    during = stats([s for r in rounds for s in r["learning"]])
    ratio = {k: round(during[k] / quiet[k], 2) for k in ("median_ms", "p90_ms")}
    for r in rounds:
        print(f"round: quiet {stats(r['quiet'])}, learning {stats(r['learning'])} for {r['learn_seconds']} s, "
              f"then answering {r['answering']!r}{'; failed: ' + r['failed'] if r['failed'] else ''}")
    print(f"/predict, one client, page drawings: quiet median {quiet['median_ms']} ms, p90 {quiet['p90_ms']} ms; "
          f"during the fine-tune median {during['median_ms']} ms, p90 {during['p90_ms']} ms "
          f"({ratio['median_ms']}x, {ratio['p90_ms']}x)")
    if args.json:
        out = {"command": "python benchmarks/teach_serve.py " + " ".join(sys.argv[1:]),
               "machine": f"{platform.machine()}, {os.cpu_count()} cores, shared with other work",
               "quiet": quiet, "learning": during, "ratio": ratio,
               "rounds": [{k: v for k, v in r.items() if k not in ("quiet", "learning")} for r in rounds]}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
