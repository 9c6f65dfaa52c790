"""Which beam_pipeline_args keep kubetfx's executors on their in-process fast paths: only
Beam's direct runner in its in_memory mode; every other runner or mode goes to the stock
Beam executor (tests/test_beam_scale_out.py runs a stage with one of them)."""
from __future__ import annotations

import pytest

from kubetfx.components import beam_runner


@pytest.mark.parametrize("args", [
    [],
    ["--runner=DirectRunner"],
    ["--runner=direct"],
    ["--runner=Direct"],
    ["--runner=SwitchingDirectRunner"],
    ["--runner=BundleBasedDirectRunner"],
    ["--runner=apache_beam.runners.direct.direct_runner.DirectRunner"],
    ["--direct_running_mode=in_memory"],
    # Beam runs in_memory with one worker whatever the count (it warns): still here.
    ["--direct_num_workers=4"],
    ["--direct_num_workers=0"],
], ids=str)
def test_the_in_process_direct_runner_keeps_the_fast_path(args):
    assert beam_runner.runs_in_process(args) and beam_runner.out_of_process(args) is None


@pytest.mark.parametrize("args, reason", [
    (["--runner=PortableRunner", "--job_endpoint=10.0.0.2:8099", "--environment_type=EXTERNAL"], "PortableRunner"),
    (["--runner=FlinkRunner", "--flink_master=flink:8081"], "FlinkRunner"),
    (["--runner=SparkRunner"], "SparkRunner"),
    (["--runner=DataflowRunner", "--project=p", "--region=europe-west1"], "DataflowRunner"),
    (["--runner=dataflow"], "dataflow"),
    (["--runner=PrismRunner"], "PrismRunner"),
    (["--runner=InteractiveRunner"], "InteractiveRunner"),
    (["--runner=apache_beam.runners.portability.flink_runner.FlinkRunner"], "FlinkRunner"),
    (["--direct_running_mode=multi_processing"], "multi_processing"),
    (["--direct_running_mode=multi_processing", "--direct_num_workers=2"], "multi_processing"),
    (["--direct_running_mode=multi_threading"], "multi_threading"),
    (["--runner=DirectRunner", "--direct_running_mode=multi_threading"], "multi_threading"),
], ids=lambda value: value if isinstance(value, str) else " ".join(value))
def test_any_other_runner_or_mode_goes_to_the_stock_executor(args, reason):
    assert not beam_runner.runs_in_process(args)
    assert reason in beam_runner.out_of_process(args)
