"""How often a failure that repeats with every request is written to the log: at its 1st,
2nd, 4th, 8th, ... occurrence. A hook or a log that fails fails every request; one line
per request would bury the server's log (and its disk) under the same message, while a
count that doubles still says the failure goes on and how many times it happened."""
from __future__ import annotations

import threading


class DoublingReport:
    """Counts occurrences; `count(n)` adds n and returns the new total when it has reached a
    power of two it had not reached before (1, 2, 4, ...; a count that jumps from 3 to 9
    reports once), else 0. Safe from several threads."""

    def __init__(self):
        self._lock = threading.Lock()
        self.total = 0

    def count(self, n: int = 1) -> int:
        with self._lock:
            before = self.total
            self.total += n
            total = self.total
        return total if n and before.bit_length() != total.bit_length() else 0
