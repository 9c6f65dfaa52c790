"""The Beam stages take --beam-pipeline-args: the same stage, run by Beam's multi-process
direct runner (the stand-in here for Dataflow/Flink/Spark), gives the same statistics."""
from __future__ import annotations

import pytest

from kubetfx.components.example_gen import executor as example_gen_executor
from kubetfx.components.example_gen.executor_test import run_example_gen
from kubetfx.components import stage_outputs
from kubetfx.pipelines.config import EMBEDDED_DATA

pytestmark = pytest.mark.slow


def _statistics(examples, uri, beam_args):
    from tfx.components.statistics_gen import executor
    from tfx.dsl.components.base import base_beam_executor
    from tfx.types import standard_artifacts

    statistics = standard_artifacts.ExampleStatistics()
    statistics.uri = uri
    context = base_beam_executor.BaseBeamExecutor.Context(beam_pipeline_args=beam_args, tmp_dir=uri + "-tmp",
                                                         unique_id="1")
    executor.Executor(context).Do({"examples": [examples]}, {"statistics": [statistics]}, {"exclude_splits": "[]"})
    return stage_outputs.examples_per_split(uri)


def test_multi_process_runner_gives_the_same_statistics(tmp_path):
    examples = run_example_gen(example_gen_executor.Executor, EMBEDDED_DATA, tmp_path / "examples")
    in_process = _statistics(examples, str(tmp_path / "stats-1"), [])
    multi_process = _statistics(examples, str(tmp_path / "stats-2"),
                                ["--direct_running_mode=multi_processing", "--direct_num_workers=2"])
    assert in_process == multi_process and sum(in_process.values()) == 344


def test_compiled_spec_carries_the_beam_args(tmp_path):
    from kubetfx.pipelines.kubeflow import compiler as kubeflow_compiler
    from kubetfx.pipelines.config import PipelineConfig
    from kubetfx.pipelines.run import inputs

    config = PipelineConfig(home=str(tmp_path), beam_pipeline_args=["--runner=FlinkRunner", "--parallelism=8"])
    spec, _ = kubeflow_compiler.compile_spec(config, prepare=inputs.prepare)
    args = spec["deploymentSpec"]["executors"]["StatisticsGen_executor"]["container"]["args"]
    assert "--runner=FlinkRunner" in args and "--parallelism=8" in args
