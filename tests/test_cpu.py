"""The training thread policy (lenet/cpu.py): what it chooses, and that it says so."""

import os
import subprocess
import sys

import pytest

from lenet import cpu


def test_threads_as_asked_or_from_the_environment():
    assert cpu.choose_threads(3) == (3, "--threads")
    assert cpu.choose_threads(None, {"OMP_NUM_THREADS": "2"}) == (2, "OMP_NUM_THREADS")


def test_busy_cores_is_measured_and_leaves_at_least_one_thread():
    busy = cpu.busy_cores(0.05)
    assert busy is None or 0 <= busy <= (os.cpu_count() or 1) + 0.01
    threads, why = cpu.choose_threads(None, {})
    assert 1 <= threads <= cpu.usable_cores() and why


def test_a_busy_core_takes_a_thread_away():
    """With every core but one kept busy by another process, training is given one thread."""
    cores = cpu.usable_cores()
    if cores < 2:
        pytest.skip(f"needs 2 or more cores to keep one busy; this runner has {cores}")
    code = "import time\nend = time.time() + 20\nwhile time.time() < end: pass"
    loops = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(cores - 1)]
    try:
        import time
        time.sleep(0.5)
        threads, why = cpu.choose_threads(None, {})
    finally:
        for p in loops:
            p.kill()
            p.wait()
    assert threads == 1, why
