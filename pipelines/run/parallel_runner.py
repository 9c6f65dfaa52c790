"""TFX's LocalDagRunner, launching independent nodes at the same time.

LocalDagRunner launches the nodes one after another (its own TODO, b/171319478, is to run
independent ones in parallel). This runner launches each node with the same TFX launcher as
soon as every node upstream of it has finished, up to `max_workers` at once (the scheduling
is pipelines/scheduling/dag_scheduler.py, the local KFP backend's too). In kubetfx's
pipeline that puts the Evaluator and the InfraValidator (whose model server is a separate
process) side by side. Each launch opens its own MLMD connection, as LocalDagRunner's do.

A failed node stops new launches; nodes already running finish (a thread cannot be
cancelled), then the first error is raised, as LocalDagRunner raises it. Ctrl-C does not
wait for them.

A `listener` hears each node start and finish (progress lines); a failed node's error and
traceback are recorded on its MLMD execution, so a report read later says why it stopped.
"""
from __future__ import annotations

import datetime
import time
import traceback
from typing import Optional

from absl import logging
from tfx.dsl.compiler import constants
from tfx.orchestration import metadata
from tfx.orchestration.local import runner_utils
from tfx.orchestration.portable import launcher, runtime_parameter_utils, tfx_runner
from tfx.orchestration.portable.mlmd import execution_lib
from tfx.proto.orchestration import execution_result_pb2, pipeline_pb2
from ml_metadata.proto import metadata_store_pb2

from kubetfx.pipelines.run import freed_memory
from kubetfx.pipelines.scheduling import dag_scheduler


class Listener:
    """Told when a node starts and when it ends (called from the node's thread)."""

    def started(self, node_id: str) -> None:
        pass

    def finished(self, node_id: str, seconds: float, state: str, error: Optional[BaseException]) -> None:
        """`state`: complete, cached or failed (as MLMD records the execution)."""

    def outputs(self, node_id: str, output_dict: dict) -> None:
        """A node's output artifacts ({key: [Artifact]}), as soon as it has completed (or
        was cached), before the nodes downstream of it are launched."""


class StageExitedError(RuntimeError):
    """Code run by a stage (a module file's run_fn or preprocessing_fn) called sys.exit()."""

    def __init__(self, node_id: str, code):
        super().__init__(f"{node_id}'s code called sys.exit({code!r}); a stage must return or raise "
                         "(sys.exit would end the whole run)")


def record_failure(connection_config, run_id: str, node_id: str, error: BaseException,
                   unfinished: bool = False) -> None:
    """Puts the error and its traceback on the node's FAILED execution of this run; with
    `unfinished`, its RUNNING execution is the one, and is marked FAILED (TFX's launcher
    publishes a failure only for an Exception: a SystemExit passes it by).

    TFX's launcher records a result message only when an executor returns a non-zero code
    (TFX 1.16 tfx/orchestration/portable/launcher.py launch: `e.executor_output if
    isinstance(e, _ExecutionFailedError) else None`); for a raised exception the execution
    keeps no trace of why. Same property and text as TFX's own `_build_error_output`
    (`__execution_result__`, ExecutionResult.result_message = the formatted exception)."""
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    with metadata.Metadata(connection_config) as m:
        run = m.store.get_context_by_type_and_name("pipeline_run", run_id)
        if run is None:
            return
        node_ctx_type = m.store.get_context_type("node")
        states = {metadata_store_pb2.Execution.FAILED}
        if unfinished:
            states.add(metadata_store_pb2.Execution.RUNNING)
        for execution in m.store.get_executions_by_context(run.id):
            contexts = m.store.get_contexts_by_execution(execution.id)
            if execution.last_known_state in states and any(
                    c.type_id == node_ctx_type.id and c.name.endswith("." + node_id) for c in contexts):
                execution.last_known_state = metadata_store_pb2.Execution.FAILED
                result = execution_result_pb2.ExecutionResult(code=1, result_message=text)
                execution_lib.set_execution_result(result, execution)
                m.store.put_executions([execution])


def _state_of(connection_config, execution_info) -> str:
    execution_id = getattr(execution_info, "execution_id", None)
    if execution_id is None:
        return "complete"
    with metadata.Metadata(connection_config) as m:
        [execution] = m.store.get_executions_by_id([execution_id])
    return "cached" if execution.last_known_state == metadata_store_pb2.Execution.CACHED else "complete"


class ParallelDagRunner(tfx_runner.IrBasedRunner):
    def __init__(self, max_workers: int = 2, listener: Optional[Listener] = None, run_id: Optional[str] = None):
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self._max_workers = max_workers
        self._listener = listener or Listener()
        self._run_id = run_id

    def run_with_ir(self, pipeline: pipeline_pb2.Pipeline, run_options=None) -> None:
        if run_options is not None:
            raise NotImplementedError("partial runs: use tfx's LocalDagRunner")
        run_id = self._run_id or datetime.datetime.now().isoformat()
        runtime_parameter_utils.substitute_runtime_parameter(
            pipeline, {constants.PIPELINE_RUN_ID_PARAMETER_NAME: run_id})
        deployment_config = runner_utils.extract_local_deployment_config(pipeline)
        connection = deployment_config.metadata_connection_config
        connection_config = getattr(connection, connection.WhichOneof("connection_config"))

        nodes = {node.pipeline_node.node_info.id: node.pipeline_node for node in pipeline.nodes
                 if not node.pipeline_node.execution_options.HasField("skip")}
        # A skipped upstream node counts as finished, as in LocalDagRunner's sequential order.
        upstream = {node_id: set(node.upstream_nodes) & nodes.keys() for node_id, node in nodes.items()}

        def launch(node_id: str):
            logging.info("Component %s is running.", node_id)
            return launcher.Launcher(
                pipeline_node=nodes[node_id],
                mlmd_connection=metadata.Metadata(connection_config),
                pipeline_info=pipeline.pipeline_info,
                pipeline_runtime_spec=pipeline.runtime_spec,
                executor_spec=runner_utils.extract_executor_spec(deployment_config, node_id),
                custom_driver_spec=runner_utils.extract_custom_driver_spec(deployment_config, node_id),
            ).launch()

        def run_node(node_id: str) -> None:
            started = time.monotonic()
            try:
                self._listener.started(node_id)
                stage_start_mb = freed_memory.resident_mb()
                try:
                    execution_info = launch(node_id)
                except SystemExit as exit_:
                    # In this process a sys.exit(0) would end the run as a success, with no
                    # summary and nothing pushed: it is this stage's failure instead.
                    raise StageExitedError(node_id, exit_.code) from exit_
                logging.info("Component %s is finished.", node_id)
                outputs = getattr(self._listener, "outputs", None)  # a duck-typed listener may lack it
                if outputs is not None and execution_info is not None and execution_info.output_dict:
                    outputs(node_id, dict(execution_info.output_dict))
                # Before the next stages run in this process (they share its memory).
                logging.info("Memory after %s: %s", node_id, freed_memory.release_after(stage_start_mb))
                state = _state_of(connection_config, execution_info)
                self._listener.finished(node_id, time.monotonic() - started, state, None)
            except BaseException as err:  # recorded here, raised by the scheduler
                try:
                    if isinstance(err, Exception):
                        record_failure(connection_config, run_id, node_id, err,
                                       unfinished=isinstance(err, StageExitedError))
                    self._listener.finished(node_id, time.monotonic() - started, "failed", err)
                except Exception:  # never hide the node's own error behind this one
                    logging.exception("Could not record the failure of %s.", node_id)
                raise

        # Ctrl-C ends the run at once, as with LocalDagRunner; a node cut off stays RUNNING
        # in MLMD until the next run's recovery marks it CANCELED.
        dag_scheduler.run(upstream, run_node, self._max_workers, order=list(nodes))
