"""prefetch.ahead: same items in the same order, produced in another thread while the
consumer works, bounded, errors and early stops carried across the thread."""
import threading

import pytest

from kubetfx.components import prefetch


def test_every_item_arrives_in_the_producers_order():
    assert list(prefetch.ahead(iter(range(1000)), depth=3)) == list(range(1000))
    assert list(prefetch.ahead([])) == []


def test_the_next_item_is_produced_while_the_consumer_holds_the_current_one():
    second_started = threading.Event()

    def items():
        yield "first"
        second_started.set()
        yield "second"

    consumer_thread = threading.get_ident()
    producers = []

    def traced():
        for item in items():
            producers.append(threading.get_ident())
            yield item

    stream = prefetch.ahead(traced())
    assert next(stream) == "first"
    # The consumer has not asked for the second item yet: the producer made it anyway.
    assert second_started.wait(10)
    assert next(stream) == "second"
    assert set(producers) and consumer_thread not in producers


def test_the_producer_stays_at_most_depth_plus_one_items_ahead():
    produced = []

    def items():
        for i in range(50):
            produced.append(i)
            yield i

    stream = prefetch.ahead(items(), depth=2)
    seen = []
    for item in stream:
        seen.append(item)
        threading.Event().wait(0.01)  # let the producer run as far as the bound allows
        # depth items in the queue, one in the producer's hand.
        assert len(produced) - len(seen) <= 3
    assert seen == list(range(50))


def test_the_producers_error_is_raised_after_the_items_before_it():
    def items():
        yield 1
        yield 2
        raise OSError("truncated record")

    seen = []
    with pytest.raises(OSError, match="truncated record"):
        for item in prefetch.ahead(items()):
            seen.append(item)
    assert seen == [1, 2]


def test_a_consumer_that_stops_early_stops_and_closes_the_producer():
    closed = threading.Event()
    produced = []

    def items():
        try:
            for i in range(10_000):
                produced.append(i)
                yield i
        finally:
            closed.set()

    stream = prefetch.ahead(items(), depth=2)
    assert next(stream) == 0
    stream.close()
    assert closed.wait(10)
    assert len(produced) < 10


def test_a_stuck_producer_is_a_timeout_not_a_hang():
    release = threading.Event()

    def items():
        yield 1
        release.wait(30)
        yield 2

    stream = prefetch.ahead(items(), timeout=0.5)
    assert next(stream) == 1
    with pytest.raises(TimeoutError, match="no batch read in 0.5 s"):
        next(stream)
    release.set()


def test_a_depth_below_one_is_refused():
    with pytest.raises(ValueError, match="depth must be at least 1"):
        list(prefetch.ahead([1], depth=0))
