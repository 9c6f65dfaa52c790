"""Every decision of a staged rollout (start, advance, wait, promote, abort), recorded twice
as rollbacks are (rollback.py): an execution of type `kubetfx.RolloutDecision` in the
pipeline's ML Metadata store, with the step, the candidate's percentage, the decision and
its evidence as JSON, linked (INPUT, key `pushed_model`) to the candidate's PushedModel
when the store has it; and a line in `<serving_dir>/rollout-history.jsonl`, which travels
with the models to a cluster volume where no local store is. `kubetfx models` and the
run report read the history back per candidate version."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

from kubetfx.pipelines.record import metadata_writes, mlmd, pushed_models
from kubetfx.pipelines.record.lineage import Lineage, prop

EXECUTION = "kubetfx.RolloutDecision"
HISTORY_FILE = "rollout-history.jsonl"  # beside the versions; not an integer name, so no version
MAX_LINES = 10_000                      # read back at most this many (the newest)


def record(config, entry: dict) -> Optional[int]:
    """Appends `entry` ({time, candidate, stable, step, percent, decision, evidence}) to the
    history file and, where the pipeline has a metadata store, writes the execution;
    returns its id (None without a store)."""
    serving_dir = Path(config.serving_dir)
    serving_dir.mkdir(parents=True, exist_ok=True)
    with open(serving_dir / HISTORY_FILE, "a") as f:
        f.write(json.dumps(entry, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())
    if not Path(config.metadata_path).exists():
        return None
    pushed = None
    if entry.get("candidate") is not None:
        records = pushed_models.pushed_versions(config.metadata_path, config.name, serving_dir, with_metrics=False)
        found = pushed_models.find(records, str(entry["candidate"]))
        if found is not None and found.pushed_model_id is not None:
            store = mlmd.open_store(config.metadata_path)
            pushed = store.get_artifacts_by_id([found.pushed_model_id])[0]
    store = mlmd.open_store(config.metadata_path, writable=True)
    properties = {"step": int(entry.get("step") or 0), "percent": float(entry.get("percent") or 0.0),
                  "decision": entry["decision"], "evidence": json.dumps(entry.get("evidence") or {}, sort_keys=True),
                  "candidate": "" if entry.get("candidate") is None else str(entry["candidate"]),
                  "stable": str(entry.get("stable", ""))}
    return metadata_writes.record_execution(store, config.name, EXECUTION, properties,
                                            inputs={"pushed_model": pushed}, outputs={})


def from_metadata(metadata_path, pipeline_name: str) -> list:
    """Decisions in the store, oldest first, as dicts (candidate, stable, step, percent,
    decision, evidence, time_ms, pushed_model_id)."""
    if not Path(metadata_path).exists():
        return []
    store = mlmd.open_store(metadata_path)
    try:
        executions = store.get_executions_by_type(EXECUTION)
    except Exception:  # noqa: BLE001 - ml_metadata raises NotFoundError for an unknown type
        return []
    lineage = Lineage(store)
    found = []
    for execution in sorted(executions, key=lambda e: e.id):
        pushed = lineage.input(execution.id, "pushed_model")
        try:
            evidence = json.loads(prop(execution, "evidence") or "{}")
        except ValueError:
            evidence = {}
        found.append({"candidate": prop(execution, "candidate") or None, "stable": prop(execution, "stable"),
                      "step": prop(execution, "step"), "percent": prop(execution, "percent"),
                      "decision": prop(execution, "decision"), "evidence": evidence,
                      "time_ms": prop(execution, "recorded_at_ms"),
                      "pushed_model_id": pushed.id if pushed is not None else None})
    return found


def from_file(serving_dir) -> list:
    path = Path(serving_dir) / HISTORY_FILE
    if not path.exists():
        return []
    found = []
    with open(path) as f:
        for line in f:
            try:
                found.append(json.loads(line))
            except ValueError:
                continue  # a torn last line of a killed writer
            if len(found) > MAX_LINES:
                found.pop(0)
    return found


def history(metadata_path, pipeline_name: str, serving_dir) -> list:
    """The store's record where there is one, else the file beside the models."""
    return from_metadata(metadata_path, pipeline_name) or from_file(serving_dir)


def by_candidate(entries: list) -> dict:
    """{candidate version: "10% start, 10% wait, 20% advance, ... promote"}: one line each."""
    lines: dict = {}
    for entry in entries:
        if entry.get("candidate") in (None, ""):
            continue
        percent = entry.get("percent")
        step = f"{percent:g}% " if isinstance(percent, (int, float)) else ""
        lines.setdefault(str(entry["candidate"]), []).append(f"{step}{entry.get('decision')}")
    return {version: _compact(items) for version, items in lines.items()}


def _compact(items: list) -> str:
    """Repeated waits at one step shown once with a count: a CronJob decides every few minutes."""
    out: list = []
    for item in items:
        if out and out[-1][0] == item:
            out[-1][1] += 1
        else:
            out.append([item, 1])
    return ", ".join(item if n == 1 else f"{item} x{n}" for item, n in out)


def state_line(serving_dir) -> Optional[str]:
    """One line on the serving directory's rollout state (rollout.json), None without one."""
    from kubetfx.components.serving import rollout_state

    try:
        state = rollout_state.load(serving_dir)
    except rollout_state.RolloutStateError as err:
        return f"rollout: {err} (the server serves stable only)"
    if state is None:
        return None
    if state.running and state.candidate is not None:
        return (f"rollout: running, version {state.candidate} answers {state.candidate_percent:g}% of callers, "
                f"version {state.stable} the others (`kubetfx rollout status`)")
    if state.running:
        return f"rollout: version {state.stable} is held as served while a staged push runs"
    return f"rollout: {state.status}; version {state.stable} serves everybody"
