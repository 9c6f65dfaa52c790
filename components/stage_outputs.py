"""One line per stage saying what it found, read from the artifacts it wrote."""
from __future__ import annotations

import glob
import json
import os
import re


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


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def eval_config(evaluation_uri: str) -> dict:
    with open(os.path.join(evaluation_uri, "eval_config.json")) as f:
        return json.load(f)["evalConfig"]


def thresholds(evaluation_uri: str) -> dict:
    """{metric name: its threshold (JSON of tfma.MetricThreshold)} from the Evaluator's config."""
    return {_snake(metric["className"]): metric.get("threshold", {})
            for spec in eval_config(evaluation_uri).get("metricsSpecs", []) for metric in spec.get("metrics", [])}


def gated_metrics(evaluation_uri: str) -> dict:
    """{metric name: (candidate value, "bound text")} for every metric with a threshold."""
    import tensorflow_model_analysis as tfma

    bounds = {}
    for name, threshold in thresholds(evaluation_uri).items():
        value = threshold.get("valueThreshold", {})
        text = " and ".join(f"{op} {value[k]}" for k, op in (("lowerBound", ">="), ("upperBound", "<="))
                            if k in value and abs(value[k]) < 1e300)
        bounds[name] = text or "no absolute bound"
    found = {}
    for record in tfma.load_metrics(evaluation_uri):
        for item in record.metric_keys_and_values:
            key = item.key
            if key.name in bounds and not key.is_diff and key.model_name in ("", "candidate"):
                found[key.name] = (item.value.double_value.value, bounds[key.name])
    return found


def _evaluation(a) -> str:
    import tensorflow_model_analysis as tfma

    metrics = [f"{name} {value:.3f} ({bound})" for name, (value, bound) in gated_metrics(a.uri).items()]
    result = tfma.load_validation_result(a.uri)
    failures = sorted({f.metric_key.name + (" vs baseline" if f.metric_key.is_diff else "")
                       for v in result.metric_validations_per_slice for f in v.failures})
    if result.missing_thresholds:
        failures.append("metrics without thresholds")
    verdict = "passed" if result.validation_ok else f"failed: {', '.join(failures) or 'see artifact'}"
    return f"{', '.join(metrics)} {verdict}"


def _training(outputs) -> str:
    """The built-in Trainer's record (training.json beside the model run), else the path."""
    text = "model " + outputs["Model"].uri
    run = outputs.get("ModelRun")
    path = os.path.join(run.uri, "training.json") if run is not None else None
    if path and os.path.exists(path):
        with open(path) as f:
            r = json.load(f)
        text = (f"trained on {r['train_examples']} examples x {r['epochs']} epochs "
                f"(best epoch {r['best_epoch']}, stopped by {r['stopped']}, batch {r['batch_size']}"
                f"{', read once into memory' if r.get('data') == 'memory' else ''})")
        if r.get("tuned"):
            text += f"; tuned hyperparameters {_hyperparameters(r['tuned'])}"
    return text


def _hyperparameters(values: dict) -> str:
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(values.items()))


def _tuning(outputs) -> str:
    """The Tuner's trials (TFX writes them, best first, to tuner_results.json)."""
    with open(os.path.join(outputs["TunerResults"].uri, "tuner_results.json")) as f:
        trials = json.load(f)
    best = trials[0]
    values = {k: v for k, v in best.items() if k not in ("trial_id", "score")}
    return f"tuned: {len(trials)} trials, best val_loss {best['score']:.4g} with {_hyperparameters(values)}"


def _examples(a) -> str:
    return "splits " + ", ".join(_split_dirs(a.uri))


def _blessing(outputs) -> str:
    from kubetfx.components.evaluator import acceptance, gate

    blessed = _prop(outputs["ModelBlessing"], "blessed") if "ModelBlessing" in outputs else None
    tolerance = gate.read(outputs.get("ModelBlessing"))  # set when compared with a served model
    held_out = acceptance.read(outputs.get("ModelBlessing"))
    return (f"{_evaluation(outputs['ModelEvaluation'])}; {'BLESSED' if blessed else 'NOT blessed'}"
            + (f"; {tolerance.line()}" if tolerance else "") + (f"; {held_out.line()}" if held_out else ""))


def _infra(outputs) -> str:
    return "INFRA BLESSED" if _prop(outputs["InfraBlessing"], "blessed") else "infra validation FAILED"


def _pushed(outputs) -> str:
    pushed = outputs["PushedModel"]
    return f"pushed to {_prop(pushed, 'pushed_destination')}" if _prop(pushed, "pushed") else "NOT pushed"


def _model(outputs) -> str:
    """A trained model by its location; the Evaluator's baseline (ServedBaseline) by what it is."""
    from kubetfx.components.evaluator import served_baseline

    model = outputs["Model"]
    version = _prop(model, served_baseline.SERVED_VERSION_PROPERTY)
    if version:
        return f"baseline: served version {version}"
    if os.path.exists(os.path.join(model.uri, served_baseline.NOTHING_SERVED_FILE)):
        return "baseline: nothing served yet (no comparison)"
    return _training(outputs)


# Artifact type whose content best says what the stage did, in the order to look for it.
_DESCRIBERS = (
    ("ModelEvaluation", _blessing),
    ("InfraBlessing", _infra),
    ("TunerResults", _tuning),
    ("PushedModel", _pushed),
    ("TransformGraph", lambda o: "transform graph " + o["TransformGraph"].uri),
    ("Model", _model),
    ("ExampleAnomalies", lambda o: _anomalies(o["ExampleAnomalies"])),
    ("ExampleStatistics", lambda o: _statistics(o["ExampleStatistics"])),
    ("Schema", lambda o: _schema(o["Schema"])),
    ("Examples", lambda o: _examples(o["Examples"])),
)


def describe(stage: str, outputs: dict) -> str:
    """`outputs` maps artifact type name to the output artifact of that type."""
    for type_name, describer in _DESCRIBERS:
        if type_name in outputs:
            try:
                return describer(outputs)
            except (OSError, ValueError, AttributeError) as err:  # a summary must never fail the run
                return f"(no detail: {err})"
    return ""
