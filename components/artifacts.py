"""What the report shows, loaded from the artifacts a run wrote, with the libraries that
wrote them (TFDV, TFMA) or their protos (SavedModel): plain values, ready to draw."""
from __future__ import annotations

import dataclasses
import glob
import json
import os
from typing import Optional

from kubetfx.components import stage_outputs

# ---- statistics (TFDV's DatasetFeatureStatisticsList, one per split) -----------------------


@dataclasses.dataclass
class NumericStats:
    count: int
    missing: float            # fraction of examples without the feature
    mean: float
    std: float
    zeros: float              # fraction of present values equal to 0
    min: float
    median: float
    max: float
    histogram: list           # [(low, high, count)]: TFDV's STANDARD (equal-width) histogram
    num_missing: int = 0      # examples without the feature (TFDV's num_missing)


@dataclasses.dataclass
class CategoricalStats:
    count: int
    missing: float
    unique: int
    top: list                 # [(value, count)], most frequent first
    avg_length: float
    examples: int = 0         # the split's examples, what a top value's share is of
    num_missing: int = 0      # examples without the feature (TFDV's num_missing)


@dataclasses.dataclass
class FeatureStats:
    name: str
    type: str                 # INT, FLOAT, STRING, BYTES, STRUCT
    numeric: Optional[NumericStats] = None
    categorical: Optional[CategoricalStats] = None


def _missing(common, num_examples: int) -> float:
    total = common.num_non_missing + common.num_missing
    return common.num_missing / total if total else (1.0 if num_examples else 0.0)


def _feature(feature, num_examples: int) -> FeatureStats:
    from tensorflow_metadata.proto.v0 import statistics_pb2

    name = ".".join(feature.path.step) or feature.name
    kind = statistics_pb2.FeatureNameStatistics.Type.Name(feature.type)
    out = FeatureStats(name=name, type=kind)
    if feature.HasField("num_stats"):
        s = feature.num_stats
        standard = next((h for h in s.histograms if h.type == statistics_pb2.Histogram.STANDARD), None)
        buckets = [(b.low_value, b.high_value, b.sample_count) for b in standard.buckets] if standard else []
        count = s.common_stats.num_non_missing
        out.numeric = NumericStats(count=count, missing=_missing(s.common_stats, num_examples), mean=s.mean,
                                   std=s.std_dev, zeros=s.num_zeros / count if count else 0.0, min=s.min,
                                   median=s.median, max=s.max, histogram=buckets,
                                   num_missing=int(s.common_stats.num_missing))
    elif feature.HasField("string_stats"):
        s = feature.string_stats
        top = [(v.value, v.frequency) for v in s.top_values]
        if not top and s.rank_histogram.buckets:
            top = [(b.label, b.sample_count) for b in s.rank_histogram.buckets]
        out.categorical = CategoricalStats(count=s.common_stats.num_non_missing,
                                           missing=_missing(s.common_stats, num_examples), unique=s.unique,
                                           top=top, avg_length=s.avg_length, examples=num_examples,
                                           num_missing=int(s.common_stats.num_missing))
    return out


def statistics(uri: str) -> dict:
    """{split: (num_examples, {feature name: FeatureStats})} of an ExampleStatistics artifact."""
    import tensorflow_data_validation as tfdv

    found = {}
    for split, path in stage_outputs._split_dirs(uri).items():
        dataset = tfdv.load_stats_binary(os.path.join(path, "FeatureStats.pb")).datasets[0]
        features = {f.name: f for f in (_feature(x, dataset.num_examples) for x in dataset.features)}
        found[split] = (dataset.num_examples, features)
    return found


# ---- schema ---------------------------------------------------------------------------------


@dataclasses.dataclass
class SchemaFeature:
    name: str
    type: str
    presence: str             # "required", "optional", "at least 50%"
    valency: str              # values per example: "at most 1", "exactly 1", "any"
    domain: str


def _presence(feature) -> str:
    p = feature.presence
    if p.min_fraction >= 1.0:
        return "required"
    if p.min_fraction > 0:
        return f"at least {p.min_fraction:.0%}"
    return "optional" if not p.min_count else f"at least {p.min_count} examples"


def _domain(feature, schema) -> str:
    if feature.HasField("domain"):
        named = next((d for d in schema.string_domain if d.name == feature.domain), None)
        return ", ".join(named.value) if named else feature.domain
    if feature.HasField("string_domain"):
        return ", ".join(feature.string_domain.value)
    for field in ("int_domain", "float_domain"):
        if feature.HasField(field):
            d = getattr(feature, field)
            low = d.min if d.HasField("min") else "-inf"
            high = d.max if d.HasField("max") else "inf"
            return f"[{low}, {high}]" + (" (categorical)" if field == "int_domain" and d.is_categorical else "")
    if feature.HasField("bool_domain"):
        return "true/false"
    return "any"


def _valency(feature) -> str:
    """TFDV's value_count: how many values an example holds ("at most 1", "exactly 1", ...)."""
    if feature.HasField("shape"):
        return "shape (" + ", ".join(str(d.size) for d in feature.shape.dim) + ")"
    if not feature.HasField("value_count"):
        return "any"
    low, high = feature.value_count.min, feature.value_count.max
    if high and low == high:
        return f"exactly {high}"
    if high:
        return f"{low} to {high}" if low else f"at most {high}"
    return f"at least {low}" if low else "any"


def schema(uri: str) -> list:
    from tensorflow_metadata.proto.v0 import schema_pb2
    from tfx.utils import io_utils

    proto = io_utils.SchemaReader().read(os.path.join(uri, "schema.pbtxt"))
    rows = []
    for f in proto.feature:
        valency = _valency(f)
        rows.append(SchemaFeature(f.name, schema_pb2.FeatureType.Name(f.type), _presence(f), valency,
                                  _domain(f, proto)))
    return rows


# ---- anomalies ------------------------------------------------------------------------------


@dataclasses.dataclass
class Anomaly:
    split: str
    feature: str
    severity: str
    short: str
    description: str


def _rows(found: dict) -> list:
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    rows = []
    for split, anomalies in found.items():
        for feature, info in sorted(anomalies.anomaly_info.items()):
            rows.append(Anomaly(split, feature, anomalies_pb2.AnomalyInfo.Severity.Name(info.severity),
                                info.short_description, info.description))
        if anomalies.HasField("dataset_anomaly_info"):
            info = anomalies.dataset_anomaly_info
            rows.append(Anomaly(split, "(dataset)", anomalies_pb2.AnomalyInfo.Severity.Name(info.severity),
                                info.short_description, info.description))
    return rows


def anomalies(uri: str) -> Optional[list]:
    """Rows of an ExampleAnomalies artifact; None when its files are gone."""
    if not glob.glob(os.path.join(uri, "Split-*", "SchemaDiff.pb")):
        return None
    return _rows(stage_outputs.anomalies_per_split(uri))


def recomputed_anomalies(statistics_uri: str, schema_uri: str) -> list:
    """What ExampleValidator computed, computed again from the same inputs: TFX's launcher
    removes a failed stage's output directory (TFX 1.16 tfx/orchestration/portable/
    launcher.py _run_executor -> outputs_utils.remove_output_dirs), so a halted run's
    anomalies exist only in the error. Same call as TFX 1.16 tfx/components/
    example_validator/executor.py _Validate: tfdv.validate_statistics(stats, schema)."""
    import tensorflow_data_validation as tfdv
    from tfx.utils import io_utils

    proto = io_utils.SchemaReader().read(os.path.join(schema_uri, "schema.pbtxt"))
    found = {}
    for split, path in stage_outputs._split_dirs(statistics_uri).items():
        stats = tfdv.load_stats_binary(os.path.join(path, "FeatureStats.pb"))
        found[split] = tfdv.validate_statistics(statistics=stats, schema=proto)
    return _rows(found)


# ---- evaluation -----------------------------------------------------------------------------


@dataclasses.dataclass
class MetricRow:
    name: str
    candidate: Optional[float]
    baseline: Optional[float]
    change: Optional[float]          # candidate - baseline (TFMA's diff metric)
    value_bound: str                 # ">= 0.6", "" when none
    change_bound: str                # "change >= -0.01", "" when none
    failures: list                   # TFMA's validation messages for this metric


@dataclasses.dataclass
class Evaluation:
    rows: list
    validation_ok: bool
    has_baseline: bool


def _bounds(threshold: dict) -> tuple:
    value = threshold.get("valueThreshold", {})
    value_text = " and ".join(f"{op} {value[k]:g}" for k, op in (("lowerBound", ">="), ("upperBound", "<="))
                              if k in value and abs(value[k]) < 1e300)
    change = threshold.get("changeThreshold", {})
    change_text = ""
    if change.get("absolute") is not None:
        absolute = change["absolute"]
        higher_is_better = change.get("direction") == "HIGHER_IS_BETTER"
        # TFMA 0.47 tensorflow_model_analysis/evaluators/metrics_validator.py: a diff passes when >= absolute (HIGHER_IS_BETTER) or <= it.
        change_text = f"change {'>=' if higher_is_better else '<='} {absolute:g}"
    return value_text, change_text


def evaluation(uri: str) -> Evaluation:
    import tensorflow_model_analysis as tfma

    bounds = {name: _bounds(threshold) for name, threshold in stage_outputs.thresholds(uri).items()}
    config = stage_outputs.eval_config(uri)
    baseline_names = {m.get("name", "") for m in config.get("modelSpecs", []) if m.get("isBaseline")}
    values: dict = {}
    for record in tfma.load_metrics(uri):
        if record.slice_key.single_slice_keys:  # the overall slice is the gate kubetfx sets
            continue
        for item in record.metric_keys_and_values:
            key = item.key
            role = "change" if key.is_diff else ("baseline" if key.model_name in baseline_names else "candidate")
            values.setdefault(key.name, {})[role] = item.value.double_value.value
    result = tfma.load_validation_result(uri)
    failures: dict = {}
    for validation in result.metric_validations_per_slice:
        for failure in validation.failures:
            what = "change" if failure.metric_key.is_diff else "value"
            text = failure.message or f"{what} {failure.metric_value.double_value.value:.4g} is outside its bound"
            failures.setdefault(failure.metric_key.name, []).append(text)
    rows = [MetricRow(name, v.get("candidate"), v.get("baseline"), v.get("change"),
                      *bounds.get(name, ("", "")), failures.get(name, []))
            for name, v in sorted(values.items(), key=lambda kv: (kv[0] not in bounds, kv[0]))]
    return Evaluation(rows=rows, validation_ok=result.validation_ok, has_baseline=bool(baseline_names))


# ---- model ----------------------------------------------------------------------------------


@dataclasses.dataclass
class Signature:
    name: str
    inputs: list              # [(name, dtype, shape)]
    outputs: list


def _shape(info) -> str:
    if info.tensor_shape.unknown_rank:
        return "?"
    return "(" + ", ".join("None" if d.size < 0 else str(d.size) for d in info.tensor_shape.dim) + ")"


def signatures(model_dir: str) -> list:
    """The SavedModel's signatures, read from saved_model.pb (no model load, no TF graph)."""
    from tensorflow.core.framework import types_pb2
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(model_dir, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    found = []
    for name, sig in sorted(proto.meta_graphs[0].signature_def.items(), key=lambda kv: kv[0] != "serving_default"):
        if name.startswith("__"):
            continue

        def tensors(d):
            return [(k, types_pb2.DataType.Name(v.dtype).replace("DT_", "").lower(), _shape(v)) for k, v in sorted(d.items())]
        found.append(Signature(name, tensors(sig.inputs), tensors(sig.outputs)))
    return found


def model_dir(uri: str) -> str:
    """A Trainer model artifact keeps its SavedModel under Format-Serving/."""
    serving = os.path.join(uri, "Format-Serving")
    return serving if os.path.isdir(serving) else uri
