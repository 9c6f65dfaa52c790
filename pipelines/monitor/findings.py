"""What a monitor run leaves behind: the new data's statistics and anomalies as artifacts
under the home, in the layout TFX's StatisticsGen and ExampleValidator write
(`Split-<name>/FeatureStats.pb`, `Split-<name>/SchemaDiff.pb`, so TFDV and TFX tools read
them), a `verdict.json`, and a `kubetfx.Monitor` execution in ML Metadata whose inputs are
the served PushedModel and its Model: the report is found from the model it judged.

Their artifact types are kubetfx's own (`kubetfx.MonitorStatistics`,
`kubetfx.MonitorAnomalies`), not TFX's ExampleStatistics/ExampleAnomalies, so no TFX
resolver or cache lookup of the pipeline ever mistakes a monitor report for a stage output."""
from __future__ import annotations

import dataclasses
import datetime
import json
from pathlib import Path

from ml_metadata.proto import metadata_store_pb2

from kubetfx.pipelines.record import mlmd
from kubetfx.pipelines.record import metadata_writes

EXECUTION_TYPE = "kubetfx.Monitor"
STATISTICS_TYPE = "kubetfx.MonitorStatistics"
ANOMALIES_TYPE = "kubetfx.MonitorAnomalies"


def report_dir(config) -> Path:
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    return config.home_path / "monitor" / config.name / stamp


def write(directory: Path, split: str, statistics, anomalies, summary: dict) -> dict:
    """Writes the three files; returns {"statistics": uri, "anomalies": uri, "verdict": path}."""
    uris = {"statistics": directory / "statistics", "anomalies": directory / "anomalies"}
    for (kind, uri), proto, filename in zip(uris.items(), (statistics, anomalies), ("FeatureStats.pb", "SchemaDiff.pb")):
        split_dir = uri / f"Split-{split}"
        split_dir.mkdir(parents=True, exist_ok=True)
        (split_dir / filename).write_bytes(proto.SerializeToString())
    verdict = directory / "verdict.json"
    verdict.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return {**{k: str(v) for k, v in uris.items()}, "verdict": str(verdict)}


def _ensure_type(store, name: str) -> None:
    store.put_artifact_type(metadata_store_pb2.ArtifactType(
        name=name, properties={"split_names": metadata_store_pb2.STRING}))


def record(config, served, split: str, paths: dict, properties: dict) -> int:
    """The execution id; inputs are the served version's PushedModel and Model."""
    store = mlmd.open_store(config.metadata_path, writable=True)
    for name in (STATISTICS_TYPE, ANOMALIES_TYPE):
        _ensure_type(store, name)
    split_names = json.dumps([split])
    outputs = {
        "statistics": metadata_writes.new_artifact(store, STATISTICS_TYPE, paths["statistics"],
                                                   properties={"split_names": split_names}),
        "anomalies": metadata_writes.new_artifact(store, ANOMALIES_TYPE, paths["anomalies"],
                                                  properties={"split_names": split_names},
                                                  custom_properties={"verdict": properties["verdict"]}),
    }
    ids = [i for i in (served.pushed_model_id, served.model_id) if i is not None]
    found = {a.id: a for a in store.get_artifacts_by_id(ids)}
    inputs = {"pushed_model": found.get(served.pushed_model_id), "model": found.get(served.model_id)}
    return metadata_writes.record_execution(store, config.name, EXECUTION_TYPE, properties, inputs, outputs)


def summary_dict(verdicts: list, **fields) -> dict:
    return {**fields, "features": [{**dataclasses.asdict(v), "ok": v.ok} for v in verdicts]}
