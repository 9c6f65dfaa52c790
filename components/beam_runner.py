"""Which Beam runner a stage's beam_pipeline_args ask for: the executors that compute in
process (Evaluator, StatisticsGen) do so only for an in-process runner, and hand a
distributed one (Dataflow, Flink, Spark) to TFX's Beam executor."""
from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

IN_PROCESS_RUNNERS = (None, "DirectRunner", "direct", "SwitchingDirectRunner", "BundleBasedDirectRunner")


def runner(beam_pipeline_args) -> str | None:
    return PipelineOptions(beam_pipeline_args).view_as(StandardOptions).runner


def runs_in_process(beam_pipeline_args) -> bool:
    return runner(beam_pipeline_args) in IN_PROCESS_RUNNERS
