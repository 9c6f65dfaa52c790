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
import time


# A stage that grew the process by this much gets a full collection before the next stage:
# the wide table's Trainer grows it by ~650 MB, the embedded data's by ~70 MB (where the
# collection, 1.3 s, would cost more than the memory it gives back).
COLLECT_AFTER_GROWTH_MB = 256


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


def release_after(stage_start_mb: float | None) -> dict:
    """Returns the freed heap to the system (malloc_trim); first collects reference cycles
    when the stage grew the process by COLLECT_AFTER_GROWTH_MB or more (a full collection
    walks every live object: paid only where there is much to gain). What it did, for the
    run log."""
    started, before = time.monotonic(), resident_mb()
    collected = None
    if stage_start_mb is None or before is None or before - stage_start_mb >= COLLECT_AFTER_GROWTH_MB:
        collected = gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
    return {"collected": collected, "before_mb": before, "after_mb": resident_mb(),
            "seconds": round(time.monotonic() - started, 2)}
