"""The worker process: what it measures of itself."""

from __future__ import annotations

import subprocess
import sys


def test_worker_peak_rss_is_its_own_not_its_parents() -> None:
    # A parent holding 512 MB more than the child will ever use, as the runner may.
    ballast = bytearray(512 * 2**20)
    ballast[:: 4096] = b"x" * len(ballast[:: 4096])  # touch every page: make it resident
    child = subprocess.run(
        [sys.executable, "-c", "from modelexport.gate.worker import peak_rss_bytes; "
         "print(peak_rss_bytes())"], capture_output=True, text=True, check=True)
    peak = int(child.stdout)
    assert 1 * 2**20 < peak < 256 * 2**20, peak
