"""One line per stage as it starts and as it ends, with the time since the run began:

    [  12.1s] StatisticsGen      started
    [  15.9s] StatisticsGen      complete in 3.8s
"""
from __future__ import annotations

import threading
import time
from typing import Optional, TextIO

WIDTH = 30  # the longest node id of kubetfx's pipeline fits


class ProgressLines:
    """A parallel_runner.Listener (not imported: that would load TFX before the log is set up)."""

    def __init__(self, out: TextIO, started_at: Optional[float] = None):
        self._out = out
        self._t0 = time.monotonic() if started_at is None else started_at
        self._lock = threading.Lock()  # two nodes may end at the same moment
        self.failed_stage: Optional[str] = None

    def _line(self, text: str) -> None:
        with self._lock:
            self._out.write(f"[{time.monotonic() - self._t0:6.1f}s] {text}\n")
            self._out.flush()

    def started(self, node_id: str) -> None:
        self._line(f"{node_id:<{WIDTH}} started")

    def finished(self, node_id: str, seconds: float, state: str, error) -> None:
        if state == "failed":
            self.failed_stage = self.failed_stage or node_id
            self._line(f"{node_id:<{WIDTH}} FAILED after {seconds:.1f}s")
        elif state == "cached":
            self._line(f"{node_id:<{WIDTH}} cached ({seconds:.1f}s)")
        else:
            self._line(f"{node_id:<{WIDTH}} {state} in {seconds:.1f}s")
