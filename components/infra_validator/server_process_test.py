"""The spare model server (server_process.start_spare): it imports TensorFlow before any
model comes, the next validation of the candidate takes it, and neither a taken nor an
untaken spare leaves a process or a directory behind."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from kubetfx.components.infra_validator import executor, server_process
from kubetfx.components.infra_validator.executor_test import _run, model_servers
from testing_models import save_scaler, wait_for
from kubetfx.pipelines.run import local_runner
from kubetfx.pipelines.config import PipelineConfig

pytestmark = [pytest.mark.slow, pytest.mark.serving]


@pytest.fixture(autouse=True)
def no_spare_left():
    yield
    server_process.discard_spare()
    assert model_servers(os.getpid()) == []


def _tensorflow_loaded(pid: int) -> bool:
    return b"libtensorflow" in Path(f"/proc/{pid}/maps").read_bytes()


def test_the_validation_takes_the_spare_which_imported_tensorflow_before_the_model_came(tmp_path, examples_dir):
    save_scaler(tmp_path / "model" / "Format-Serving", 2.0)
    server_process.start_spare(server_process.CANDIDATE_MODEL_NAME)
    spare = server_process._spare
    wait_for(lambda: _tensorflow_loaded(spare.process.pid), what="the spare's TensorFlow import")
    assert not any(spare.base.iterdir())  # no model yet: the import did not wait for one

    blessing = _run(tmp_path, tmp_path / "model", examples_dir)

    assert blessing.get_int_custom_property("blessed") == 1
    log = (Path(blessing.uri) / executor.LOG_FILE).read_text()
    assert f"versions under {spare.base}" in log and "Serving version 1" in log  # the spare served it
    assert server_process._spare is None and spare.process.poll() is not None
    assert not spare.workdir.exists()


def test_a_spare_for_another_model_is_stopped_and_a_fresh_server_validates(tmp_path, examples_dir):
    save_scaler(tmp_path / "model" / "Format-Serving", 2.0)
    server_process.start_spare("another-model")
    spare = server_process._spare

    blessing = _run(tmp_path, tmp_path / "model", examples_dir)

    assert blessing.get_int_custom_property("blessed") == 1
    assert str(spare.base) not in (Path(blessing.uri) / executor.LOG_FILE).read_text()
    assert spare.process.poll() is not None and not spare.workdir.exists()


def test_a_spare_nobody_takes_is_stopped():
    server_process.start_spare(server_process.CANDIDATE_MODEL_NAME)
    spare = server_process._spare
    server_process.discard_spare()
    assert spare.process.poll() is not None and not spare.workdir.exists()
    server_process.discard_spare()  # idempotent


def test_a_run_is_small_up_to_64_mb_and_100_columns_of_csv(tmp_path, monkeypatch):
    config = PipelineConfig(home=str(tmp_path))  # the embedded penguins: 15 kB, 8 columns
    assert local_runner.is_small_run(config)
    monkeypatch.setattr(local_runner, "SMALL_RUN_MAX_DATA_BYTES", 1000)
    assert not local_runner.is_small_run(config)
    monkeypatch.undo()
    wide = tmp_path / "wide.csv"  # 3 kB, but as wide as the table that went over 2 GB beside the Evaluator
    wide.write_text(",".join(f"x{i}" for i in range(101)) + "\n" + ",".join("1" for _ in range(101)) + "\n")
    assert not local_runner.is_small_run(PipelineConfig(home=str(tmp_path), data=str(wide)))
    wide.write_text(",".join(f"x{i}" for i in range(100)) + "\n" + ",".join("1" for _ in range(100)) + "\n")
    assert local_runner.is_small_run(PipelineConfig(home=str(tmp_path), data=str(wide)))
