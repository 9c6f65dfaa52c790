"""Shared helpers for end-to-end tests: run the real `kubetfx` CLI and read real MLMD."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def run_kubetfx():
    """Runs `kubetfx ARGS` in a subprocess (the real console entry point), returns the result."""
    def run(*args, env=None, timeout=900):
        full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
        return subprocess.run([sys.executable, "-m", "kubetfx.pipelines.cli", *map(str, args)],
                              capture_output=True, text=True, env=full_env, timeout=timeout, cwd=REPO)
    return run


def executions_by_stage(metadata_path: Path) -> dict:
    """{node id: [execution state names]} for every execution recorded in the store."""
    from ml_metadata.proto import metadata_store_pb2
    from kubetfx.pipelines.record import mlmd

    store = mlmd.open_store(metadata_path)
    node_type = store.get_context_type("node")
    states = {}
    for execution in store.get_executions():
        for ctx in store.get_contexts_by_execution(execution.id):
            if ctx.type_id == node_type.id:
                name = metadata_store_pb2.Execution.State.Name(execution.last_known_state)
                states.setdefault(ctx.name.split(".", 1)[1], []).append(name)
    return states
