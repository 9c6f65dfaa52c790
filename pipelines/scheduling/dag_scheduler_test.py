"""The one DAG scheduler on real threads: order, side by side, failure, cycles, Ctrl-C."""
import _thread
import signal
import threading
import time

import pytest

from kubetfx.pipelines.scheduling import dag_scheduler

DIAMOND = {"a": set(), "b": {"a"}, "c": {"a"}, "d": {"b", "c"}}


def test_one_worker_takes_ready_nodes_in_the_callers_order_and_waits_for_every_need():
    ran = []
    graph = {"a": set(), "b": {"a"}, "c": {"a", "b"}, "d": {"a"}}
    dag_scheduler.run(graph, ran.append, parallelism=1, order=["a", "d", "c", "b"])
    assert ran == ["a", "d", "b", "c"]
    ran.clear()
    dag_scheduler.run(graph, ran.append, parallelism=1)  # by name
    assert ran == ["a", "b", "c", "d"]


def test_independent_nodes_run_side_by_side():
    both_started = threading.Barrier(2, timeout=10)
    ran = []

    def execute(node):
        ran.append(node)
        if node in ("b", "c"):
            both_started.wait()  # BrokenBarrierError unless b and c run at the same time
    dag_scheduler.run(DIAMOND, execute, parallelism=2)
    assert ran[0] == "a" and set(ran[1:3]) == {"b", "c"} and ran[3] == "d"


def test_a_failure_stops_new_launches_lets_running_nodes_finish_and_is_raised():
    ran, finished = [], []

    def execute(node):
        ran.append(node)
        if node == "b":
            raise RuntimeError("b failed")
        if node == "c":
            time.sleep(0.5)  # still running when b fails
            finished.append(node)
    with pytest.raises(RuntimeError, match="b failed"):
        dag_scheduler.run(DIAMOND, execute, parallelism=2)
    assert sorted(ran) == ["a", "b", "c"] and finished == ["c"]


def test_a_cycle_and_an_unknown_need_are_refused_before_anything_runs():
    ran = []
    with pytest.raises(ValueError, match="cycle: (a -> b -> a|b -> a -> b)"):
        dag_scheduler.run({"a": {"b"}, "b": {"a"}, "c": set()}, ran.append)
    with pytest.raises(ValueError, match=r"unknown nodes: \['x'\]"):
        dag_scheduler.run({"a": {"x"}}, ran.append)
    with pytest.raises(ValueError, match="parallelism"):
        dag_scheduler.run({"a": set()}, ran.append, parallelism=0)
    assert ran == []


@pytest.fixture
def sigint_as_at_a_terminal():
    """SIGINT raising KeyboardInterrupt, as in a shell's foreground job (a suite started in
    the background inherits SIGINT ignored), restored afterwards."""
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, handler)


@pytest.mark.parametrize("drain", [False, True])
def test_ctrl_c_raises_at_once_or_after_the_running_nodes_when_asked_to_drain(sigint_as_at_a_terminal, drain):
    started, release, ended = threading.Event(), threading.Event(), []

    def execute(node):
        started.set()
        release.wait(timeout=30)
        ended.append(node)

    def interrupt_then_release():
        assert started.wait(timeout=30)
        # Only the flag, as a Ctrl-C that lands just before the scheduler's wait blocks.
        _thread.interrupt_main(signal.SIGINT)
        time.sleep(1.0)
        release.set()
    helper = threading.Thread(target=interrupt_then_release, daemon=True)
    helper.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            dag_scheduler.run({"a": set()}, execute, parallelism=1, drain_on_interrupt=drain)
        assert ended == (["a"] if drain else [])  # without drain, raised before the node ended
    finally:
        release.set()
        helper.join(timeout=10)
