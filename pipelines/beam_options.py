"""Beam options for the Beam stages (ExampleGen, StatisticsGen, Transform, Evaluator...).

User-given `beam_pipeline_args` (Dataflow, Flink, Spark...) always win. Otherwise the
direct runner runs in-process: on small inputs the multi-process mode costs more in worker
start-up and pickling than it saves (measured ~2.3x slower on the penguin example)."""
from __future__ import annotations

IN_PROCESS = ["--direct_running_mode=in_memory", "--direct_num_workers=1"]


def beam_args(config) -> list:
    return list(config.beam_pipeline_args) or list(IN_PROCESS)
