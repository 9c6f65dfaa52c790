"""The root DAG as Argo runs it: a task starts when every task it depends on has succeeded
(its `dependentTasks` and the producers of its inputs; KFP 2.5.0
backend/src/v2/compiler/argocompiler/dag.go turns them into Argo `depends`), independent
tasks run side by side, and the first failure stops new launches while the running tasks
finish (Argo's DAG `failFast`, on by default). KFP sets no DAG parallelism unless the
pipeline asks; here it is bounded (`--max-parallel-tasks`, default 2: one machine, two cores).
"""
from __future__ import annotations

import concurrent.futures
from typing import Callable


def dependencies(task: dict) -> set:
    needs = set(task.get("dependentTasks", []))
    for source in task.get("inputs", {}).get("artifacts", {}).values():
        if "taskOutputArtifact" in source:
            needs.add(source["taskOutputArtifact"]["producerTask"])
    for source in task.get("inputs", {}).get("parameters", {}).values():
        if "taskOutputParameter" in source:
            needs.add(source["taskOutputParameter"]["producerTask"])
    return needs


def check_acyclic(tasks: dict) -> None:
    done: set = set()
    while len(done) < len(tasks):
        ready = {n for n, t in tasks.items() if n not in done and dependencies(t) <= done}
        if not ready:
            raise ValueError(f"the spec's task graph has a cycle among {sorted(set(tasks) - done)}")
        done |= ready


def run(tasks: dict, execute: Callable[[str], None], parallelism: int = 2) -> None:
    """Runs `execute(name)` for every task in dependency order; re-raises the first failure
    after the tasks already running have ended."""
    check_acyclic(tasks)
    unknown = {d for t in tasks.values() for d in dependencies(t)} - set(tasks)
    if unknown:
        raise ValueError(f"tasks depend on unknown tasks: {sorted(unknown)}")
    done: set = set()
    failure = None
    running: dict = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool:
        while True:
            if failure is None:
                ready = sorted(n for n, t in tasks.items()
                               if n not in done and n not in running.values() and dependencies(t) <= done)
                for name in ready[:max(1, parallelism) - len(running)]:
                    running[pool.submit(execute, name)] = name
            if not running:
                break
            finished, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in finished:
                name = running.pop(future)
                if future.exception() is not None:
                    failure = failure or future.exception()
                else:
                    done.add(name)
    if failure is not None:
        raise failure
    if len(done) < len(tasks):
        raise ValueError(f"tasks never became ready: {sorted(set(tasks) - done)}")
