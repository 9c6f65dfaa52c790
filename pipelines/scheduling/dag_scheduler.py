"""Runs the nodes of a DAG on threads, each as soon as every node it needs has succeeded,
at most `parallelism` at once: the one scheduler of both engines, `run/parallel_runner.py`
(TFX nodes in process) and `kubeflow/local_backend/dag.py` (a compiled spec's tasks in
containers). The ordering is the standard library's `graphlib.TopologicalSorter`; what is
left here is what both engines need on top of it, once:

- the first failure stops new launches; nodes already running finish (a thread cannot be
  cancelled), then that first error is raised (TFX's LocalDagRunner raises it, Argo's DAG
  `failFast` stops so);
- among nodes ready together, the caller's order decides (pipeline order for TFX, task
  name for the spec), so a run with one worker is the same run every time;
- a Ctrl-C raises KeyboardInterrupt at once: the wait for a finished node is taken in
  short slices, since Python runs a signal handler only between bytecodes and a signal
  that lands just before an untimed wait blocks would stay pending until a node finished,
  minutes later. Threads are daemons, so a node cut off never keeps the process alive;
  `drain_on_interrupt` lets the running nodes end first (the local backend: each task is
  bounded by its own timeout and its container is stopped by it).

Its own folder at floor 2 (pipelines/README.md) because both callers are libraries of
different folders that may not import each other; it imports nothing from kubetfx."""
from __future__ import annotations

import graphlib
import queue
import threading
from typing import Callable, Iterable, Mapping, Optional, Sequence

# How long one slice of the wait for a finished node is (see the docstring: Ctrl-C).
POLL_SECONDS = 0.2


def check(graph: Mapping[str, Iterable[str]]) -> graphlib.TopologicalSorter:
    """A prepared sorter of {node: the nodes it needs}; ValueError for a need that is no
    node, or a cycle (named node by node)."""
    unknown = {need for needs in graph.values() for need in needs} - set(graph)
    if unknown:
        raise ValueError(f"nodes depend on unknown nodes: {sorted(unknown)}")
    sorter = graphlib.TopologicalSorter({node: set(needs) for node, needs in graph.items()})
    try:
        sorter.prepare()
    except graphlib.CycleError as err:
        raise ValueError(f"the graph has a cycle: {' -> '.join(err.args[1])}") from None
    return sorter


def _next_result(results: queue.Queue) -> tuple:
    while True:
        try:
            return results.get(timeout=POLL_SECONDS)
        except queue.Empty:
            continue


def run(graph: Mapping[str, Iterable[str]], execute: Callable[[str], None], parallelism: int = 2,
        order: Optional[Sequence[str]] = None, drain_on_interrupt: bool = False) -> None:
    """Calls `execute(node)` for every node of `graph` ({node: the nodes it needs}), each on
    its own thread once its needs have succeeded; re-raises the first failure after the
    nodes already running have ended. `order`: the preference among ready nodes (default:
    by name)."""
    if parallelism < 1:
        raise ValueError(f"parallelism must be at least 1, not {parallelism}")
    sorter = check(graph)
    rank = {node: i for i, node in enumerate(order if order is not None else sorted(graph))}
    results: queue.Queue = queue.Queue()

    def work(node: str) -> None:
        try:
            execute(node)
        except BaseException as err:  # handed to the scheduling thread, which raises it
            results.put((node, err))
        else:
            results.put((node, None))

    ready: list = []
    running = 0
    threads: list = []
    failure: Optional[BaseException] = None
    try:
        while True:
            if failure is None:
                ready = sorted([*ready, *sorter.get_ready()], key=lambda n: rank.get(n, len(rank)))
                while ready and running < parallelism:
                    node = ready.pop(0)
                    running += 1
                    thread = threading.Thread(target=work, args=(node,), name=f"node-{node}", daemon=True)
                    threads.append(thread)  # first: a Ctrl-C right after start() must find it
                    thread.start()
            if not running:
                break
            node, error = _next_result(results)
            running -= 1
            if error is None:
                sorter.done(node)
            else:
                failure = failure or error
    except KeyboardInterrupt:
        if drain_on_interrupt:  # the nodes' threads themselves: no count to get wrong mid-update
            for thread in threads:
                while thread.is_alive():  # in slices, so a second Ctrl-C ends this wait too
                    thread.join(POLL_SECONDS)
        raise
    if failure is not None:
        raise failure
    if sorter.is_active():  # not reachable: check() refused cycles and unknown needs
        raise RuntimeError("nodes never became ready")
