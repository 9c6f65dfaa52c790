"""One line per stage saying what it found, read from the artifacts it wrote."""
from __future__ import annotations

import glob
import os


def _prop(artifact, name):
    if name not in artifact.custom_properties:
        return None
    value = artifact.custom_properties[name]
    return value.int_value if value.HasField("int_value") else value.string_value


def _split_dirs(uri: str) -> dict:
    return {os.path.basename(p)[len("Split-"):]: p for p in sorted(glob.glob(os.path.join(uri, "Split-*")))}


def examples_per_split(statistics_uri: str) -> dict:
    import tensorflow_data_validation as tfdv

    counts = {}
    for split, path in _split_dirs(statistics_uri).items():
        stats = tfdv.load_stats_binary(os.path.join(path, "FeatureStats.pb"))
        counts[split] = stats.datasets[0].num_examples
    return counts


def anomalies_per_split(anomalies_uri: str) -> dict:
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    found = {}
    for split, path in _split_dirs(anomalies_uri).items():
        anomalies = anomalies_pb2.Anomalies()
        with open(os.path.join(path, "SchemaDiff.pb"), "rb") as f:
            anomalies.ParseFromString(f.read())
        found[split] = anomalies
    return found


def _statistics(a) -> str:
    counts = examples_per_split(a.uri)
    return ", ".join(f"{split} {n} rows" for split, n in counts.items())


def _schema(a) -> str:
    from tfx.utils import io_utils
    from tensorflow_metadata.proto.v0 import schema_pb2

    schema = io_utils.SchemaReader().read(os.path.join(a.uri, "schema.pbtxt"))
    assert isinstance(schema, schema_pb2.Schema)
    return f"{len(schema.feature)} features"


def _anomalies(a) -> str:
    found = anomalies_per_split(a.uri)
    parts = [f"{split}: {len(x.anomaly_info)} ({', '.join(sorted(x.anomaly_info)) or 'none'})" for split, x in found.items()]
    return "anomalies " + "; ".join(parts)


def _evaluation(a) -> str:
    import tensorflow_model_analysis as tfma

    result = tfma.load_validation_result(a.uri)
    metrics = []
    for record in tfma.load_metrics(a.uri):
        for key in record.metric_keys_and_values:
            if key.key.name.endswith("example_count") or key.key.HasField("is_diff") and key.key.is_diff:
                continue
            if not key.key.model_name or key.key.model_name == "candidate":
                metrics.append(f"{key.key.name}={key.value.double_value.value:.3f}")
    failures = [f.metric_key.name for v in result.metric_validations_per_slice for f in v.failures]
    verdict = "passed" if result.validation_ok else f"failed ({', '.join(sorted(set(failures))) or 'see artifact'})"
    return f"{' '.join(metrics)} thresholds {verdict}"


def describe(stage: str, outputs: dict) -> str:
    """`outputs` maps artifact type name to the output artifact of that type."""
    try:
        if "ExampleStatistics" in outputs:
            return _statistics(outputs["ExampleStatistics"])
        if "Examples" in outputs and stage.endswith("ExampleGen"):
            return "splits " + ", ".join(_split_dirs(outputs["Examples"].uri))
        if "Schema" in outputs:
            return _schema(outputs["Schema"])
        if "ExampleAnomalies" in outputs:
            return _anomalies(outputs["ExampleAnomalies"])
        if "TransformGraph" in outputs:
            return "transform graph " + outputs["TransformGraph"].uri
        if "ModelEvaluation" in outputs:
            blessed = _prop(outputs.get("ModelBlessing"), "blessed") if "ModelBlessing" in outputs else None
            return f"{_evaluation(outputs['ModelEvaluation'])}; {'BLESSED' if blessed else 'NOT blessed'}"
        if "InfraBlessing" in outputs:
            return "INFRA BLESSED" if _prop(outputs["InfraBlessing"], "blessed") else "infra validation FAILED"
        if "PushedModel" in outputs:
            pushed = outputs["PushedModel"]
            return f"pushed to {_prop(pushed, 'pushed_destination')}" if _prop(pushed, "pushed") else "NOT pushed"
        if "Model" in outputs:
            return "model " + outputs["Model"].uri
    except (OSError, ValueError) as err:  # a summary line must never fail the run
        return f"(no detail: {err})"
    return ""
