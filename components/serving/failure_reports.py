"""How often a failure that repeats with every request is written to the log: at its 1st,
2nd, 4th, 8th, ... occurrence. A hook or a log that fails fails every request; one line
per request would bury the server's log (and its disk) under the same message, while a
count that doubles still says the failure goes on and how many times it happened."""
from __future__ import annotations

import threading


class DoublingReport:
    """Counts occurrences; `count()` returns the new total when it is to be reported
    (1, 2, 4, ...), else 0. Safe from several threads."""

    def __init__(self):
        self._lock = threading.Lock()
        self.total = 0

    def count(self) -> int:
        with self._lock:
            self.total += 1
            total = self.total
        return total if total & (total - 1) == 0 else 0
