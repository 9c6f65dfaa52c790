"""Concurrent model calls merged into one, as TF Serving's batching does: under load most
of a one-instance predict is the fixed cost of one TensorFlow call (about 1 ms of 2 here),
so requests that arrive while a call runs are concatenated into the next call and its
outputs split back by rows.

No timer: a call starts as soon as nothing runs for its key (an idle server adds no
latency); while it runs, requests queue; the next call takes the queue, up to max_rows.
A batched call that raises is retried one request at a time, so a bad request fails
alone; so is a batch whose outputs do not have one row per input row.

    batcher = Batcher(max_rows=256)
    outputs = batcher.call(key, run, feed)   # run(feed) -> {name: array, rows first}
"""
from __future__ import annotations

import threading
from typing import Callable, Hashable

import numpy as np

Feed = dict      # {input name: list or array, rows first}
Outputs = dict   # {output name: numpy array, rows first}


class _Waiting:
    __slots__ = ("feed", "rows", "woken", "outputs", "error")

    def __init__(self, feed: Feed, rows: int):
        self.feed, self.rows = feed, rows
        self.woken = threading.Event()
        self.outputs: Outputs | None = None
        self.error: BaseException | None = None


class Batcher:
    def __init__(self, max_rows: int = 256):
        if max_rows < 1:
            raise ValueError("max_rows must be at least 1")
        self.max_rows = max_rows
        self._lock = threading.Lock()
        self._queues: dict[Hashable, list[_Waiting]] = {}
        self._running: set = set()
        self.calls = 0      # model calls made (for tests and the benchmark)
        self.requests = 0   # requests answered

    def call(self, key: Hashable, run: Callable[[Feed], Outputs], feed: Feed) -> Outputs:
        """run(feed)'s outputs, computed alone or with requests of the same key (one
        model version and signature) that are waiting at the same time."""
        lengths = {len(value) for value in feed.values()}
        rows = lengths.pop() if len(lengths) == 1 else 0
        if rows == 0 or rows >= self.max_rows:  # nothing to split by, or a batch already
            self._count(1, 1)
            return run(feed)
        me = _Waiting(feed, rows)
        with self._lock:
            self._queues.setdefault(key, []).append(me)
            leading = key not in self._running
            if leading:
                self._running.add(key)
        if not leading:
            me.woken.wait()
            if me.outputs is None and me.error is None:
                leading = True  # handed the next call: this request is at the head of the queue
        if leading:
            self._lead(key, run)
        if me.error is not None:
            raise me.error
        return me.outputs

    def _lead(self, key, run) -> None:
        with self._lock:
            queue = self._queues[key]
            batch = [queue.pop(0)]
            rows = batch[0].rows
            while queue and rows + queue[0].rows <= self.max_rows:
                rows += queue[0].rows
                batch.append(queue.pop(0))
        try:
            self._run(batch, run)
        finally:
            with self._lock:
                queue = self._queues[key]
                if queue:
                    queue[0].woken.set()  # it leads the next call
                else:
                    self._running.discard(key)
                    del self._queues[key]
            for waiting in batch:
                waiting.woken.set()

    def _run(self, batch: list[_Waiting], run) -> None:
        if len(batch) > 1:
            try:
                outputs = run(_concatenate([w.feed for w in batch]))
                total = sum(w.rows for w in batch)
                if all(len(v) == total for v in outputs.values()):
                    start = 0
                    for waiting in batch:
                        waiting.outputs = {k: v[start:start + waiting.rows] for k, v in outputs.items()}
                        start += waiting.rows
                    self._count(1, len(batch))
                    return
            except Exception:  # noqa: BLE001 - retried one by one: only the bad request fails
                pass
        for waiting in batch:
            try:
                waiting.outputs = run(waiting.feed)
            except BaseException as err:  # noqa: BLE001 - raised in the request's own thread
                waiting.error = err
        self._count(len(batch), len(batch))

    def _count(self, calls: int, requests: int) -> None:
        with self._lock:
            self.calls += calls
            self.requests += requests


def _concatenate(feeds: list[Feed]) -> Feed:
    """Inputs joined along rows. Arrays keep their dtype (object for bytes: numpy's bytes
    dtype would strip the trailing NUL bytes of serialized tf.Examples)."""
    joined = {}
    for name in feeds[0]:
        values = [feed[name] for feed in feeds]
        if all(isinstance(v, list) for v in values):
            joined[name] = [row for value in values for row in value]
        else:
            joined[name] = np.concatenate([v if isinstance(v, np.ndarray) else np.asarray(v, dtype=object)
                                           for v in values])
    return joined
