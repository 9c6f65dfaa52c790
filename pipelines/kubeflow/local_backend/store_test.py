"""The run's object store on a real S3 server (moto, server mode) on loopback: it starts
empty, whatever earlier runs left in the mirror, and gets back only what a run asks for."""
from __future__ import annotations

from kubetfx.pipelines.kubeflow import object_store
from kubetfx.pipelines.kubeflow.local_backend import store


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
