"""Whether a stage's beam_pipeline_args leave it in this process: kubetfx's executors that
compute without Beam (ExampleGen, StatisticsGen, Transform, Evaluator) do so only then,
and hand anything else (Dataflow, Flink, Spark, Beam's portable job service, the direct
runner's thread or process workers) to TFX's stock Beam executor, which runs what was asked.

In process means Beam's direct runner in its default `in_memory` mode, the one whose
bundles run in this interpreter (apache_beam 2.60 FnApiRunner.run_pipeline: only
`multi_threading` and `multi_processing` swap the embedded worker for gRPC threads or
`sdk_worker_main` subprocesses). `--direct_num_workers` alone does not leave it: in
`in_memory` mode Beam (and TFX's BaseBeamExecutor) warn that the count has no effect."""
from __future__ import annotations

from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions

# Beam's own aliases: create_runner() lower-cases the name, accepts it without its
# "Runner" suffix and as a dotted class path (apache_beam/runners/runner.py).
IN_PROCESS_RUNNERS = frozenset({"direct", "directrunner", "switchingdirectrunner", "bundlebaseddirectrunner"})
IN_PROCESS_MODE = "in_memory"


def runner(beam_pipeline_args) -> str | None:
    return PipelineOptions(beam_pipeline_args).view_as(StandardOptions).runner


def out_of_process(beam_pipeline_args) -> str | None:
    """Why these args take Beam out of this process (for a log line), or None when they do not."""
    options = PipelineOptions(beam_pipeline_args)
    name = options.view_as(StandardOptions).runner
    if name is not None and name.rsplit(".", 1)[-1].lower() not in IN_PROCESS_RUNNERS:
        return f"the {name} Beam runner"
    mode = options.view_as(DirectOptions).direct_running_mode
    if mode != IN_PROCESS_MODE:
        return f"the direct runner's {mode} mode"
    return None


def runs_in_process(beam_pipeline_args) -> bool:
    return out_of_process(beam_pipeline_args) is None
