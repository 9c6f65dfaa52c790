"""The ONNX conversion a small run starts ahead, as the Trainer ends (pipelines/run/
local_runner.py `_OnnxCopyAhead`, components/pusher/onnx_export.start), for a model that
is never pushed: before, its entry stayed in onnx_export._ahead (and its thread could
still be reading the model) after the run, until the process ended. A real run in this
process, as `kubetfx run` runs it, with a threshold no model reaches."""
from __future__ import annotations

import os
import threading

import pytest


@pytest.mark.slow
@pytest.mark.serving
def test_a_run_whose_model_is_not_blessed_leaves_no_conversion_behind(tmp_path, monkeypatch):
    from kubetfx.components.pusher import onnx_export
    from kubetfx.pipelines.config import PipelineConfig
    from kubetfx.pipelines.run import inputs, local_runner

    started, real_start = [], onnx_export.start
    monkeypatch.setattr(onnx_export, "start", lambda path: (started.append(path), real_start(path)))
    config = inputs.prepare(PipelineConfig(home=str(tmp_path / "home"), eval_threshold=1.01, train_steps=20))
    assert local_runner.is_small_run(config)  # the run that converts ahead
    local_runner.run(config)
    assert len(started) == 1 and started[0].startswith(str(config.pipeline_root))  # the Trainer's model
    assert not os.listdir(config.serving_dir)  # not blessed: nothing pushed
    assert os.path.realpath(started[0]) not in onnx_export._ahead  # before: its entry stayed
    assert not [t for t in threading.enumerate() if t.name == "onnx-export-ahead"]
