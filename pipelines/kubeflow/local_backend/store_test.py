"""The run's object store on a real S3 server (moto, server mode) on loopback: it starts
empty, whatever earlier runs left in the mirror, and gets back only what a run asks for."""
from __future__ import annotations

import re
import time
import urllib.request

import pytest

from kubetfx.pipelines.kubeflow import object_store
from kubetfx.pipelines.kubeflow.local_backend import backend, store


def _keys(s3) -> list:
    return sorted(e["Key"] for e in object_store.list_objects(s3, "minio://mlpipeline"))


def test_a_run_restores_only_the_outputs_it_reuses(tmp_path):
    mirror = tmp_path / "object-store"
    for run in range(3):  # three earlier runs' outputs
        examples = mirror / "mlpipeline" / "v2" / "artifacts" / "p" / f"run{run}" / "make" / "examples"
        examples.mkdir(parents=True)
        (examples / "rows.txt").write_text(str(run))
    (mirror / "mlpipeline" / "v2" / "artifacts" / "p" / "run2" / "make" / "executor-logs").write_text("log")

    with store.running(mirror, tmp_path / "server.log") as s:
        s.ensure_bucket("minio://mlpipeline")
        assert _keys(s.s3) == []  # nothing uploaded at start, however long the history
        assert s.restore("minio://mlpipeline/v2/artifacts/p/run2/make/examples")
        assert s.restore("minio://mlpipeline/v2/artifacts/p/run2/make/executor-logs")  # a single object
        assert _keys(s.s3) == ["v2/artifacts/p/run2/make/examples/rows.txt", "v2/artifacts/p/run2/make/executor-logs"]
        assert not s.restore("minio://mlpipeline/v2/artifacts/p/run9/make/examples")  # gone from the mirror


def test_the_data_root_keeps_only_the_current_files_across_runs(tmp_path):
    mirror, data = tmp_path / "object-store", tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text("x\n1\n")
    (data / "b.csv").write_text("x\n2\n")
    with store.running(mirror, tmp_path / "server.log") as s:
        first = s.sync_data(data, "minio://mlpipeline/kubetfx/data/p/")
    (data / "b.csv").unlink()
    with store.running(mirror, tmp_path / "server.log") as s:
        second = s.sync_data(data, "minio://mlpipeline/kubetfx/data/p/")
        assert _keys(s.s3) == ["kubetfx/data/p/a.csv"]
    assert second != first
    assert sorted(p.name for p in (mirror / "mlpipeline" / "kubetfx" / "data" / "p").iterdir()) == ["a.csv"]


def _answering_endpoint(log, timeout: float = 60) -> str:
    """The server's address once its log says it listens, with nobody asking for the store."""
    deadline = time.monotonic() + timeout
    while True:
        found = re.search(r"Running on (http://127\.0\.0\.1:\d+)", log.read_text() if log.exists() else "")
        if found:
            return found.group(1)
        assert time.monotonic() < deadline, "the object store did not start on its own"
        time.sleep(0.2)


@pytest.mark.parametrize("used", [True, False])   # False: the compile failed, the run never came
def test_a_run_started_early_boots_its_store_while_the_spec_compiles_and_stops_it(tmp_path, used):
    early = backend.start_early(tmp_path / "home", "p")
    try:
        endpoint = _answering_endpoint(tmp_path / "home" / "logs" / "p" / early.run_id / "object-store.log")
        if used:
            with early.store.running() as s:
                s.ensure_bucket("minio://mlpipeline")
                assert s.s3.meta.endpoint_url == endpoint and _keys(s.s3) == []
    finally:
        early.close()
    with pytest.raises(OSError):
        urllib.request.urlopen(endpoint + "/", timeout=5)
