"""The batcher with real threads: concurrent requests share calls, each gets its own rows
back, a bad request fails alone, no call exceeds max_rows."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from kubetfx.components.serving.batching import Batcher


def _doubling(calls: list):
    """A model: doubles "x"; a row of -1 is an invalid input; each call takes 20 ms."""
    def run(feed):
        calls.append(len(feed["x"]))
        time.sleep(0.02)
        x = np.asarray(feed["x"], dtype=float)
        if (x == -1).any():
            raise ValueError("x = -1 is not a valid input")
        return {"y": x * 2, "tag": np.asarray(feed["tag"], dtype=object)}
    return run


def _concurrently(batcher, run, feeds):
    results = [None] * len(feeds)

    def one(i):
        try:
            results[i] = batcher.call("model", run, feeds[i])
        except ValueError as err:
            results[i] = err
    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(feeds))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_concurrent_requests_share_calls_and_get_their_own_rows():
    calls, batcher = [], Batcher(max_rows=256)
    feeds = [{"x": [float(i), float(i) + 0.5], "tag": [b"a\x00" * i, b"b"]} for i in range(40)]
    results = _concurrently(batcher, _doubling(calls), feeds)
    for i, result in enumerate(results):
        assert result["y"].tolist() == [2.0 * i, 2.0 * i + 1]
        assert result["tag"].tolist() == [b"a\x00" * i, b"b"]  # bytes intact, trailing NULs kept
    assert batcher.requests == 40 and len(calls) < 20


def test_a_bad_request_fails_alone():
    calls, batcher = [], Batcher()
    feeds = [{"x": [-1.0 if i == 7 else float(i)], "tag": [b""]} for i in range(20)]
    results = _concurrently(batcher, _doubling(calls), feeds)
    assert isinstance(results[7], ValueError)
    assert [r["y"].tolist() for i, r in enumerate(results) if i != 7] == [[2.0 * i] for i in range(20) if i != 7]


def test_no_call_exceeds_max_rows_and_a_large_request_runs_alone():
    calls, batcher = [], Batcher(max_rows=8)
    feeds = [{"x": [1.0] * 3, "tag": [b""] * 3} for _ in range(30)] + [{"x": [1.0] * 50, "tag": [b""] * 50}]
    _concurrently(batcher, _doubling(calls), feeds)
    assert 50 in calls and max(c for c in calls if c != 50) <= 8


def test_max_rows_must_be_positive():
    with pytest.raises(ValueError, match="max_rows"):
        Batcher(max_rows=0)
