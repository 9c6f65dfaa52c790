"""kubetfx's fast paths step aside when the Beam args ask for workers elsewhere: with the
direct runner's multi_processing or multi_threading mode (Beam's local stand-ins for
Dataflow/Flink/Spark) ExampleGen and StatisticsGen run TFX's stock Beam executor, and
its output equals the in-process fast path's. The same stages across namespaced hosts:
tests/test_portable_beam.py."""
from __future__ import annotations

import functools
import logging

import pytest

from kubetfx.components import stage_outputs
from kubetfx.components.example_gen import executor as example_gen_executor
from kubetfx.components.example_gen.executor_test import run_example_gen
from kubetfx.components.statistics_gen import executor as statistics_gen_executor
from kubetfx.pipelines.config import EMBEDDED_DATA
from portable_beam import compare

pytestmark = pytest.mark.slow

MULTI_PROCESS = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
MULTI_THREAD = ["--direct_running_mode=multi_threading", "--direct_num_workers=2"]


def _with_args(executor_class, beam_args, tmp_dir):
    from tfx.dsl.components.base import base_beam_executor

    context = base_beam_executor.BaseBeamExecutor.Context(beam_pipeline_args=beam_args, tmp_dir=str(tmp_dir),
                                                         unique_id="1")
    return functools.partial(executor_class, context)


def _statistics(executor_class, examples, uri):
    from tfx.types import standard_artifacts

    statistics = standard_artifacts.ExampleStatistics()
    statistics.uri = str(uri)
    executor_class().Do({"examples": [examples]}, {"statistics": [statistics]}, {"exclude_splits": "[]"})
    return statistics


def _messages(caplog) -> list:
    return [record.getMessage() for record in caplog.records]


def test_example_gen_and_statistics_gen_hand_a_multi_worker_run_to_the_stock_executor(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.INFO, logger="absl")  # TFX logs through absl, whose level a run before may have raised
    fast_examples = run_example_gen(example_gen_executor.Executor, EMBEDDED_DATA, tmp_path / "examples-fast")
    assert fast_examples.get_int_custom_property(example_gen_executor.ROWS_READ) == 344  # the fast path's mark
    caplog.clear()
    threaded = _with_args(example_gen_executor.Executor, MULTI_THREAD, tmp_path / "tmp-eg")
    stock_examples = run_example_gen(threaded, EMBEDDED_DATA, tmp_path / "examples-stock")
    assert not stock_examples.has_custom_property(example_gen_executor.ROWS_READ)
    assert not any(m.startswith("ExampleGen: ") and " rows from " in m for m in _messages(caplog))

    caplog.clear()
    fast = _statistics(statistics_gen_executor.Executor, fast_examples, tmp_path / "stats-fast")
    assert any(m.startswith("StatisticsGen: split") for m in _messages(caplog))
    caplog.clear()
    processes = _with_args(statistics_gen_executor.Executor, MULTI_PROCESS, tmp_path / "tmp-sg")
    stock = _statistics(processes, stock_examples, tmp_path / "stats-stock")
    messages = _messages(caplog)
    assert not any(m.startswith("StatisticsGen: split") for m in messages)  # not the fast path
    assert "Generating statistics for split train." in messages  # TFX's stock executor
    compare.assert_same_statistics(stock.uri, fast.uri)
    assert sum(stage_outputs.examples_per_split(stock.uri).values()) == 344


def test_compiled_spec_carries_the_beam_args(tmp_path):
    from kubetfx.pipelines.kubeflow import compiler as kubeflow_compiler
    from kubetfx.pipelines.config import PipelineConfig
    from kubetfx.pipelines.run import inputs

    config = PipelineConfig(home=str(tmp_path), beam_pipeline_args=["--runner=FlinkRunner", "--parallelism=8"])
    spec, _ = kubeflow_compiler.compile_spec(config, prepare=inputs.prepare)
    args = spec["deploymentSpec"]["executors"]["StatisticsGen_executor"]["container"]["args"]
    assert "--runner=FlinkRunner" in args and "--parallelism=8" in args
