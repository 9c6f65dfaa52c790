"""Run a generator ahead of its consumer in a thread, a bounded number of items ahead.

The in-process fast paths (ExampleGen, StatisticsGen, Transform) read in a loop whose two
halves each keep one core busy in C++ that releases the GIL: TensorFlow's TFRecord reader
and tfx_bsl's decoder on one side, TFDV's combiners, a TensorFlow session or the record
writers on the other. Run one after the other they leave the second core of a 2-core
machine idle; run here, the producer's next batch is read and decoded while the consumer
works on the current one. Items arrive in the producer's order, so outputs do not change.

Bounded (at most `depth` items wait, plus the one the producer holds), every wait has a
timeout, the producer's exception is raised in the consumer, and a consumer that stops
early (an exception, a break) stops the producer after its current item."""
from __future__ import annotations

import queue
import threading

DEPTH = 2
# A batch that takes longer than this to read and decode means a stuck reader, not a slow one.
TIMEOUT_SECONDS = 600.0
_POLL_SECONDS = 0.1
_END = object()


def ahead(items, depth: int = DEPTH, timeout: float = TIMEOUT_SECONDS):
    """The items of the iterable `items`, in order, each produced in a background thread
    while the caller works on the ones before it."""
    if depth < 1:
        raise ValueError(f"depth must be at least 1, not {depth}")
    waiting = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                waiting.put(entry, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        iterator = iter(items)
        try:
            for item in iterator:
                if not put((item, None)):
                    return
            put((_END, None))
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, raised there
            put((_END, error))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:  # a generator's own cleanup, in the thread that ran it
                close()

    thread = threading.Thread(target=produce, name="kubetfx-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            try:
                item, error = waiting.get(timeout=timeout)
            except queue.Empty:
                raise TimeoutError(f"kubetfx: no batch read in {timeout:g} s: the reader is stuck") from None
            if item is _END:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        thread.join(timeout)
