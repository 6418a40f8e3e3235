"""How many CPU threads training uses, and how they wait: chosen before torch starts its pool.

PyTorch's OpenMP threads spin while they wait for work (OMP_WAIT_POLICY=ACTIVE, in effect), which
is fastest on an idle machine and ruinous on a shared one: a spinning thread takes the core from
the process that holds it, and each step waits for the slowest thread. Measured with
`python benchmarks/busy.py` (README, "Speed"): with one core of two kept busy, training with
PyTorch's defaults kept 28% of its idle speed in the issue's run. So:

- the thread count is the cores this process may use less the ones other processes keep busy
  (measured from /proc/stat over a fifth of a second, so a run that just ended does not count as
  a load average would), at least one; `--threads` or OMP_NUM_THREADS decides instead when given;
- the wait policy is PASSIVE (waiting threads sleep) when other work was found busy, unless the
  environment sets one. On a quiet machine it is left alone: PASSIVE there cost 15-20% (11,674 and
  14,161 images/s with OpenMP's default, 10,072 and 11,315 with PASSIVE, side by side).

Both must be set before `import torch`: OpenMP reads its environment once, when the pool starts.
"""

from __future__ import annotations

import os
import sys


def one_blas_thread() -> None:
    """One BLAS/OpenMP thread per process, for work that spreads over processes instead (serve's
    workers, predict's pool) or is too small to split (one image): threads that outnumber the cores
    spin and make every process wait. Before NumPy loads: its BLAS reads this once."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def choose_threads(requested: int | None = None, environ=os.environ) -> tuple[int, str]:
    """(threads, why) for a training or evaluation run, given `--threads` (None: choose); why
    mentions "busy" when other work was found."""
    cores = usable_cores()
    if requested:
        return requested, "--threads"
    if environ.get("OMP_NUM_THREADS", "").isdigit() and int(environ["OMP_NUM_THREADS"]) > 0:
        return int(environ["OMP_NUM_THREADS"]), "OMP_NUM_THREADS"
    busy = busy_cores()
    if busy is None:
        return cores, f"{cores} cores"
    others = min(cores - 1, int(busy + 0.5))  # cores other processes keep busy, rounded
    if others <= 0:
        return cores, f"{cores} cores, none busy ({busy:.1f} in use)"
    return cores - others, f"{cores} cores, {others} busy with other work ({busy:.1f} in use)"


def busy_cores(seconds: float = 0.2) -> float | None:
    """How many cores' worth of CPU time the whole machine used over `seconds` (None off Linux)."""
    import time

    def sample():
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        return sum(values), values[3] + values[4]  # total, idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    if total1 <= total0:
        return None
    return (1 - (idle1 - idle0) / (total1 - total0)) * (os.cpu_count() or 1)


def prepare(requested: int | None = None) -> str:
    """Set the wait policy and thread count for the torch that is about to be imported; returns the
    line that says what was chosen."""
    threads, why = choose_threads(requested)
    if threads < usable_cores() and requested is None and not os.environ.get("OMP_NUM_THREADS", "").isdigit():
        # Fewer threads than cores, by our own choice: other work was found busy.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    policy = os.environ.get("OMP_WAIT_POLICY", "OpenMP's default")
    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch = sys.modules.get("torch")
    if torch is not None:  # already loaded (a notebook): OpenMP has read its environment
        torch.set_num_threads(threads)
    return f"CPU: {threads} thread{'s' if threads != 1 else ''} ({why}), OMP_WAIT_POLICY={policy}"
