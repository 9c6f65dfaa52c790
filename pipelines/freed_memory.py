"""Giving a finished stage's memory back to the system.

`kubetfx run` runs every stage in one process (TFX's in-process launcher), so what one stage
freed but the allocator kept counts against the next: on a 20k-row x 300-column table the
Trainer's leftovers (Keras model, traced functions, the transform graph, freed but not
returned) stayed resident while the Evaluator and the InfraValidator's model server ran,
and the run peaked there. Reference cycles (Keras and tf.function objects) wait for the
cyclic collector; freed blocks stay in glibc's heap until malloc_trim hands them back.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import os


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    """glibc's malloc_trim, or None (musl, macOS: nothing to call, nothing to gain)."""
    name = ctypes.util.find_library("c")
    trim = getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    return trim


def resident_mb() -> float | None:
    """This process's resident memory (Linux), for the run log."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return None


def release() -> int:
    """Collects reference cycles and returns the freed heap to the system; the number of
    objects the collector freed."""
    collected = gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
    return collected
