"""Recurring runs on the local KFP backend, as KFP starts them (KFP 2.5.0
backend/src/crd/controller/scheduledworkflow/controller.go submitNewWorkflowIfNotAlreadySubmitted):
at each tick the ScheduledWorkflow controller creates an ordinary run of the pipeline version
the recurring run was created with, with the parameters stored in it; nothing is uploaded
again. Whatever lands under `data_root` between two ticks is what the next run reads: the
spec's `data-fingerprint` task (pipelines/kubeflow/data_import.py) decides, at the tick,
whether ExampleGen and all after it re-run or hit the cache.

    recurring.create(home, "kubetfx-penguin", "kubetfx-penguin-schedule", spec, platform, {"data_root": uri})
    summary = recurring.tick(home, "kubetfx-penguin", "kubetfx-penguin-schedule", Options())

One recurring run per pipeline and name: creating it again replaces it (as `kubetfx submit
--schedule` replaces its own on the cluster). A tick is started by the caller (a test, a
cron line), not by a clock: the cron expression is stored and shown, never interpreted.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

from kubetfx.pipelines.kubeflow.local_backend import backend
from kubetfx.pipelines.kubeflow.local_backend.options import Options


class NoSuchRecurringRun(LookupError):
    pass


def _path(home: Path, pipeline: str, name: str) -> Path:
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"recurring run name {name!r} must be a plain name")
    return Path(home) / "kfp-backend" / pipeline / "recurring" / f"{name}.json"


def create(home: Path, pipeline: str, name: str, spec: dict, platform: Optional[dict], parameters: dict,
           cron: str = "") -> Path:
    """Stores the recurring run (the spec as uploaded, its parameters); replaces one of the
    same pipeline and name. Returns where it is kept."""
    path = _path(home, pipeline, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps({"name": name, "pipeline": pipeline, "cron": cron, "parameters": parameters,
                                   "spec": spec, "platform": platform}))
    os.replace(partial, path)  # a reader never sees half of it
    return path


def names(home: Path, pipeline: str) -> list:
    folder = Path(home) / "kfp-backend" / pipeline / "recurring"
    return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []


def tick(home: Path, pipeline: str, name: str, options: Options = Options()):
    """One scheduled run: the stored spec and parameters, the data as the store has it now."""
    path = _path(home, pipeline, name)
    if not path.is_file():
        raise NoSuchRecurringRun(f"no recurring run {name!r} of {pipeline} in {home}")
    stored = json.loads(path.read_text())
    request = backend.RunRequest(pipeline=pipeline, home=Path(home), parameters=dict(stored["parameters"]))
    return backend.run_spec(stored["spec"], stored["platform"], request, options)
