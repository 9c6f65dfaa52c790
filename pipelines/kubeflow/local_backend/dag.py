"""The root DAG as Argo runs it: a task starts when every task it depends on has succeeded
(its `dependentTasks` and the producers of its inputs; KFP 2.5.0
backend/src/v2/compiler/argocompiler/dag.go turns them into Argo `depends`), independent
tasks run side by side, and the first failure stops new launches while the running tasks
finish (Argo's DAG `failFast`, on by default). KFP sets no DAG parallelism unless the
pipeline asks; here it is bounded (`--max-parallel-tasks`, default 2: one machine, two cores).

What a task depends on is read here, from the spec; the scheduling is
pipelines/scheduling/dag_scheduler.py, the in-process runner's too.
"""
from __future__ import annotations

from typing import Callable

from kubetfx.pipelines.scheduling import dag_scheduler


def dependencies(task: dict) -> set:
    needs = set(task.get("dependentTasks", []))
    for source in task.get("inputs", {}).get("artifacts", {}).values():
        if "taskOutputArtifact" in source:
            needs.add(source["taskOutputArtifact"]["producerTask"])
    for source in task.get("inputs", {}).get("parameters", {}).values():
        if "taskOutputParameter" in source:
            needs.add(source["taskOutputParameter"]["producerTask"])
    return needs


def run(tasks: dict, execute: Callable[[str], None], parallelism: int = 2) -> None:
    """Runs `execute(name)` for every task in dependency order, ready tasks by name; re-raises
    the first failure after the tasks already running have ended. A Ctrl-C, too, lets the
    running tasks end (each is bounded by its --task-timeout, which stops its container)."""
    dag_scheduler.run({name: dependencies(task) for name, task in tasks.items()}, execute, parallelism,
                      drain_on_interrupt=True)
