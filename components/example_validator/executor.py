"""The data gate: stock ExampleValidator records anomalies and lets the run go on to train
on bad data. With `on_anomalies: fail` this executor stops the run right after writing the
anomalies artifact, so nothing downstream (Transform, Trainer, Pusher) runs."""
from __future__ import annotations

import os

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.components.example_validator import executor as tfx_validator
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils

from kubetfx.components import stage_outputs

MAX_EXAMPLES_SHOWN = 3


class DataRejectedError(RuntimeError):
    """Error-severity anomalies in the data; the message lists them."""


def error_anomalies(anomalies_uri: str) -> list[str]:
    """Readable lines, one per error anomaly: split, column, problem."""
    lines = []
    for split, anomalies in stage_outputs.anomalies_per_split(anomalies_uri).items():
        for column, info in sorted(anomalies.anomaly_info.items()):
            if info.severity != anomalies_pb2.AnomalyInfo.ERROR:
                continue
            lines.append(f"[{split}] column {column!r}: {info.short_description} — {info.description}")
        if anomalies.HasField("dataset_anomaly_info") and anomalies.dataset_anomaly_info.severity == anomalies_pb2.AnomalyInfo.ERROR:
            lines.append(f"[{split}] dataset: {anomalies.dataset_anomaly_info.description}")
    return lines


def keep_rejected(anomalies_uri: str) -> str:
    """A copy of the anomalies beside the artifact, where the user can read them: TFX's
    launcher deletes the outputs of a failed execution (the artifact itself goes)."""
    kept = os.path.join(os.path.dirname(os.path.dirname(anomalies_uri)), "rejected_anomalies",
                        os.path.basename(anomalies_uri))
    io_utils.copy_dir(anomalies_uri, kept)
    return kept


class FailOnAnomaliesExecutor(tfx_validator.Executor):

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        super().Do(input_dict, output_dict, exec_properties)
        anomalies = artifact_utils.get_single_instance(output_dict[standard_component_specs.ANOMALIES_KEY])
        problems = error_anomalies(anomalies.uri)
        if problems:
            raise DataRejectedError(
                f"{len(problems)} error anomalies; the run stops before Transform:\n  "
                + "\n  ".join(problems)
                + f"\nFull anomalies: {keep_rejected(anomalies.uri)}\n"
                "Fix the data, or update the schema if the change is expected "
                "(or run with --on-anomalies warn).")
