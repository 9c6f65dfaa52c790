"""Runs the pipeline in this process (TFX's launcher, through ParallelDagRunner), with
SQLite MLMD and local files. Importing this module loads no TensorFlow: `kubetfx run`
takes the lock and redirects the libraries' output to the run's log before they load."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from kubetfx.pipelines.config import PipelineConfig
from kubetfx.pipelines.record.home_lock import exclusive_run


def metadata_config(config: PipelineConfig):
    from tfx.orchestration import metadata

    config.metadata_path.parent.mkdir(parents=True, exist_ok=True)
    return metadata.sqlite_metadata_connection_config(str(config.metadata_path))


def run(config: PipelineConfig, *, listener=None, run_id: Optional[str] = None) -> None:
    """Runs `config` (already prepared) to completion; raises on a failed stage."""
    with exclusive_run(config):  # before the slow imports: a second run is refused at once
        run_locked(config, listener=listener, run_id=run_id)


def run_locked(config: PipelineConfig, *, listener=None, run_id: Optional[str] = None) -> None:
    """`run`, for a caller already holding `exclusive_run(config)`. `listener` hears each
    stage start and end (parallel_runner.Listener); `run_id` names the pipeline run."""
    for path in (config.pipeline_root, config.serving_dir):
        Path(path).mkdir(parents=True, exist_ok=True)
    small = is_small_run(config)
    if small:
        from kubetfx.components.infra_validator import server_process

        server_process.start_spare(server_process.CANDIDATE_MODEL_NAME)
    try:
        # A small run gains seconds from the Evaluator and the InfraValidator side by side;
        # a large one would add the model server's memory to the Evaluator's peak.
        _run_pipeline(config, listener, run_id, max_workers=2 if small else 1)
    finally:
        if small:
            server_process.discard_spare()


# Up to this much CSV and this many columns a run is small: its fixed costs weigh, and two
# things take them off the critical path. The InfraValidator's model server is started with
# the run (a spare: its interpreter and TensorFlow import, 2-3 s, overlap the run's own
# imports on the other core), and the Evaluator and the InfraValidator run side by side
# (1M rows of 8 columns, 37 MB: 2.5 s less). A larger run does neither: the idle server
# (~300 MB) and the model server beside the Evaluator add to the peak memory, which grows
# with the number of features (20k rows of 300 columns, 44 MB, went over 2 GB; one stage
# at a time it peaks at 1.9 GB) and with the rows (10M rows, 380 MB: 1.5 GB at one stage
# at a time).
SMALL_RUN_MAX_DATA_BYTES = 64 << 20
SMALL_RUN_MAX_COLUMNS = 100


def is_small_run(config: PipelineConfig) -> bool:
    from kubetfx.components.example_gen import csv_input

    try:
        paths = csv_input.csv_files(config.data)
        size = sum(path.stat().st_size for path in paths)
        return size <= SMALL_RUN_MAX_DATA_BYTES and len(csv_input.header(paths[0])) <= SMALL_RUN_MAX_COLUMNS
    except Exception:  # noqa: BLE001 - a size that cannot be read is not small
        return False


def _run_pipeline(config: PipelineConfig, listener, run_id: Optional[str], max_workers: int) -> None:
    from kubetfx.components import autograph
    from kubetfx.pipelines.run import recovery
    from kubetfx.pipelines.run.parallel_runner import ParallelDagRunner
    from kubetfx.pipelines.pipeline import create_pipeline

    autograph.skip_libraries()  # also for a user's module file, trained in this process

    recovery.recover(config)
    pipeline = create_pipeline(config, metadata_connection_config=metadata_config(config))
    if max_workers > 1:
        listener = _OnnxCopyAhead(listener)
    try:
        ParallelDagRunner(max_workers=max_workers, listener=listener, run_id=run_id).run(pipeline)
    finally:
        if isinstance(listener, _OnnxCopyAhead):
            listener.close()


TRAINER_NODE_ID = "Trainer"


class _OnnxCopyAhead:
    """Forwards to the run's listener, and starts the Pusher's ONNX copy of the model as the
    Trainer ends (components/pusher/onnx_export.start). On a small run it then converts in a
    thread beside the Evaluator and the InfraValidator (whose thread only waits on its model
    server) instead of after them, inside the Pusher; the Pusher takes the same bytes. A
    large run, one stage at a time, keeps the conversion in the Pusher. A conversion no
    Pusher took (a model not blessed, a failed run) ends with the run (`close`)."""

    def __init__(self, listener):
        self._listener = listener
        self._started = []  # the model paths converted ahead

    def close(self) -> None:
        if self._started:
            from kubetfx.components.pusher import onnx_export

            for path in self._started:
                onnx_export.discard(path)

    def started(self, node_id: str) -> None:
        if self._listener is not None:
            self._listener.started(node_id)

    def finished(self, node_id: str, seconds: float, state: str, error) -> None:
        if self._listener is not None:
            self._listener.finished(node_id, seconds, state, error)

    def outputs(self, node_id: str, output_dict: dict) -> None:
        if node_id == TRAINER_NODE_ID and output_dict.get("model"):
            from tfx.utils import path_utils

            from kubetfx.components.pusher import onnx_export

            model = output_dict["model"][0]
            # The path the Pusher converts (TFX's Pusher.GetModelPath).
            path = path_utils.serving_model_path(model.uri, path_utils.is_old_model_artifact(model))
            self._started.append(path)
            onnx_export.start(path)
        forward = getattr(self._listener, "outputs", None)
        if forward is not None:
            forward(node_id, output_dict)
