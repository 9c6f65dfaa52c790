"""TFX's LocalDagRunner, launching independent nodes at the same time.

LocalDagRunner launches the nodes one after another (its own TODO, b/171319478, is to run
independent ones in parallel). This runner launches each node with the same TFX launcher as
soon as every node upstream of it has finished, up to `max_workers` at once. In kubetfx's
pipeline that puts the Evaluator and the InfraValidator (whose model server is a separate
process) side by side. Each launch opens its own MLMD connection, as LocalDagRunner's do.

A failed node stops new launches; nodes already running finish (a thread cannot be
cancelled), then the first error is raised, as LocalDagRunner raises it. Ctrl-C does not
wait for them: see run_with_ir.
"""
from __future__ import annotations

import datetime
import queue
import threading

from absl import logging
from tfx.dsl.compiler import constants
from tfx.orchestration import metadata
from tfx.orchestration.local import runner_utils
from tfx.orchestration.portable import launcher, runtime_parameter_utils, tfx_runner
from tfx.proto.orchestration import pipeline_pb2


def ready_nodes(pending: list, upstream: dict, finished: set) -> list:
    """The pending node ids (in pipeline order) whose upstream nodes have all finished."""
    return [node for node in pending if upstream[node] <= finished]


def _next_result(results: queue.Queue):
    """The next finished node, waiting in short slices: Python runs a signal handler only
    between bytecodes, so a Ctrl-C that lands after the interpreter's last check and before
    an untimed wait blocks stays pending until that wait returns (the next node to finish,
    minutes later). A timed wait returns and lets the handler raise KeyboardInterrupt."""
    while True:
        try:
            return results.get(timeout=0.2)
        except queue.Empty:
            continue


class ParallelDagRunner(tfx_runner.IrBasedRunner):
    def __init__(self, max_workers: int = 2):
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self._max_workers = max_workers

    def run_with_ir(self, pipeline: pipeline_pb2.Pipeline, run_options=None) -> None:
        if run_options is not None:
            raise NotImplementedError("partial runs: use tfx's LocalDagRunner")
        runtime_parameter_utils.substitute_runtime_parameter(
            pipeline, {constants.PIPELINE_RUN_ID_PARAMETER_NAME: datetime.datetime.now().isoformat()})
        deployment_config = runner_utils.extract_local_deployment_config(pipeline)
        connection = deployment_config.metadata_connection_config
        connection_config = getattr(connection, connection.WhichOneof("connection_config"))

        nodes = {node.pipeline_node.node_info.id: node.pipeline_node for node in pipeline.nodes
                 if not node.pipeline_node.execution_options.HasField("skip")}
        # A skipped upstream node counts as finished, as in LocalDagRunner's sequential order.
        upstream = {node_id: set(node.upstream_nodes) & nodes.keys() for node_id, node in nodes.items()}

        def launch(node_id: str) -> None:
            logging.info("Component %s is running.", node_id)
            launcher.Launcher(
                pipeline_node=nodes[node_id],
                mlmd_connection=metadata.Metadata(connection_config),
                pipeline_info=pipeline.pipeline_info,
                pipeline_runtime_spec=pipeline.runtime_spec,
                executor_spec=runner_utils.extract_executor_spec(deployment_config, node_id),
                custom_driver_spec=runner_utils.extract_custom_driver_spec(deployment_config, node_id),
            ).launch()
            logging.info("Component %s is finished.", node_id)

        results: queue.Queue = queue.Queue()

        def run_node(node_id: str) -> None:
            try:
                launch(node_id)
                results.put((node_id, None))
            except BaseException as err:  # handed to the scheduling thread, which raises it
                results.put((node_id, err))

        pending, finished, running, error = list(nodes), set(), set(), None
        while True:
            if error is None:
                for node_id in ready_nodes(pending, upstream, finished)[:self._max_workers - len(running)]:
                    pending.remove(node_id)
                    running.add(node_id)
                    # Daemon threads: Ctrl-C in the main thread ends the run at once, as with
                    # LocalDagRunner; a node cut off stays RUNNING in MLMD until the next
                    # run's recovery marks it CANCELED.
                    threading.Thread(target=run_node, args=(node_id,), name=f"node-{node_id}", daemon=True).start()
            if not running:
                break
            node_id, err = _next_result(results)
            running.discard(node_id)
            if err is None:
                finished.add(node_id)
            else:
                error = error or err
        if error is not None:
            raise error
        if pending:  # not reachable from a valid IR: upstream ids always name pipeline nodes
            raise RuntimeError(f"nodes never became ready: {pending}")
