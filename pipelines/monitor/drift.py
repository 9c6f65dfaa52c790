"""New data against the served model's training data: TFDV's schema validation and its
drift/skew comparators, turned into one verdict per feature.

The measures are TFDV's (tensorflow_data_validation 1.16, anomalies/feature_statistics
_validator.cc): L-infinity distance between the value distributions for categorical
(string) features, Jensen-Shannon divergence between the histograms for numeric ones.
New labelled data is drift (`previous_statistics` = training data); requests from the
inference log are training/serving skew (`serving_statistics`), validated in a SERVING
environment where the label is not expected.

A label column absent from the new data (production data, requests) is left out of the
comparison; new data in which no model input has a value (another file, another header) is
bad input, not a verdict. Missing values are judged by their rates, not by TFDV's presence check: a
feature's missing rate in the new data against training's, an alarm only past
`drift_missing_rate_threshold` (absolute difference), whether a gap is an absent feature
or an empty value list (older ExampleGen) on either side.

A sample's measures move by chance, the more the fewer rows it has (a 1-row sample is at
L-infinity 0.5 or more from any distribution of two or more values): each limit is at least
the measure's noise floor, what a healthy sample of that many rows exceeds less than once in
a thousand per feature (noise_floor), so a quiet hour's 10 requests are not DRIFT; at the sizes the
defaults were set for (100 rows and more) the defaults decide.

One verdict word per feature, the most serious first: DRIFT (SKEW for requests), MISSING,
ANOMALY (a schema anomaly other than presence), ok; the run's verdict is the most serious
word any feature has."""
from __future__ import annotations

import copy
import dataclasses
import math
from typing import Optional

import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2

from kubetfx.components.example_gen.csv_input import InputError
from kubetfx.pipelines.config import ConfigError

DRIFT, SKEW = "drift", "skew"
OK, MISSING, ANOMALY = "ok", "MISSING", "ANOMALY"
_MEASURE = {anomalies_pb2.DriftSkewInfo.Measurement.L_INFTY: "L-infinity",
            anomalies_pb2.DriftSkewInfo.Measurement.JENSEN_SHANNON_DIVERGENCE: "Jensen-Shannon"}


@dataclasses.dataclass
class Thresholds:
    categorical: float
    numeric: float
    per_feature: dict
    missing: float = 0.1

    @classmethod
    def from_config(cls, config) -> "Thresholds":
        thresholds = cls(config.drift_categorical_threshold, config.drift_numeric_threshold,
                         dict(config.drift_feature_thresholds or {}), config.drift_missing_rate_threshold)
        for name, value in [("drift_categorical_threshold", thresholds.categorical),
                            ("drift_numeric_threshold", thresholds.numeric),
                            ("drift_missing_rate_threshold", thresholds.missing),
                            *((f"drift_feature_thresholds[{k}]", v) for k, v in thresholds.per_feature.items())]:
            if not isinstance(value, (int, float)) or not 0 < value <= 1:
                raise ConfigError(f"{name} must be a number in (0, 1], got {value!r}")
        return thresholds

    def of(self, feature: schema_pb2.Feature) -> float:
        if feature.name in self.per_feature:
            return float(self.per_feature[feature.name])
        return self.categorical if is_categorical(feature) else self.numeric


@dataclasses.dataclass
class FeatureVerdict:
    feature: str
    kind: str                     # categorical | numeric
    measure: Optional[str] = None
    value: Optional[float] = None
    threshold: Optional[float] = None
    moved: bool = False           # the measure is above the threshold
    anomalies: list = dataclasses.field(default_factory=list)  # schema anomalies, one line each
    detail: str = ""              # what changed, in the data's own terms
    missing_training: Optional[float] = None  # fraction of examples without a value
    missing: Optional[float] = None
    missing_moved: bool = False   # the rate moved past the missing-rate threshold
    verdict: str = OK             # OK, DRIFT or SKEW, MISSING, ANOMALY

    @property
    def ok(self) -> bool:
        return self.verdict == OK


def is_categorical(feature: schema_pb2.Feature) -> bool:
    return feature.type == schema_pb2.BYTES or feature.HasField("domain") or feature.HasField("string_domain")


def with_comparators(schema: schema_pb2.Schema, thresholds: Thresholds, mode: str,
                     label: Optional[str], floors: Optional[dict] = None) -> schema_pb2.Schema:
    """A copy of the schema with a comparator on every feature, its limit at least the
    feature's noise floor (`floors`); for skew, the label is kept out of the SERVING
    environment (requests carry no label)."""
    schema = copy.deepcopy(schema)
    unknown = sorted(set(thresholds.per_feature) - {f.name for f in schema.feature})
    if unknown:
        raise ConfigError(f"drift_feature_thresholds names features the model has no schema for: {unknown}")
    for feature in schema.feature:
        comparator = feature.drift_comparator if mode == DRIFT else feature.skew_comparator
        target = comparator.infinity_norm if is_categorical(feature) else comparator.jensen_shannon_divergence
        target.threshold = max(thresholds.of(feature), (floors or {}).get(feature.name, 0.0))
    if mode == SKEW and label:
        if not schema.default_environment:
            schema.default_environment.extend(["TRAINING", "SERVING"])
        for feature in schema.feature:
            if feature.name == label:
                feature.not_in_environment.append("SERVING")
    return schema


def compare(new: statistics_pb2.DatasetFeatureStatisticsList, training: statistics_pb2.DatasetFeatureStatisticsList,
            schema: schema_pb2.Schema, mode: str) -> anomalies_pb2.Anomalies:
    """Schema anomalies of the new data plus the drift (or skew) measurements."""
    if mode == DRIFT:
        return tfdv.validate_statistics(new, schema, previous_statistics=training)
    anomalies = tfdv.validate_statistics(new, schema, environment="SERVING")
    skew = tfdv.validate_statistics(training, schema, environment="SERVING", serving_statistics=new)
    anomalies.drift_skew_info.extend(skew.drift_skew_info)
    for name, info in skew.anomaly_info.items():  # skew anomalies are reported on the training side
        if any(r.type in (anomalies_pb2.AnomalyInfo.COMPARATOR_L_INFTY_HIGH,
                          anomalies_pb2.AnomalyInfo.COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH) for r in info.reason):
            anomalies.anomaly_info[name].MergeFrom(info)
    return anomalies


def _feature_stats(statistics, name: str):
    for feature in statistics.datasets[0].features:
        if feature.path.step == [name] or feature.name == name:
            return feature
    return None


def _detail(feature: schema_pb2.Feature, new, training) -> str:
    new_f, old_f = _feature_stats(new, feature.name), _feature_stats(training, feature.name)
    if new_f is None or old_f is None:
        return "absent from the new data" if new_f is None else ""
    if new_f.HasField("num_stats") and old_f.HasField("num_stats"):
        return f"mean {old_f.num_stats.mean:.4g} -> {new_f.num_stats.mean:.4g}"
    if new_f.HasField("string_stats") and old_f.HasField("string_stats"):
        def shares(f):
            total = sum(b.sample_count for b in f.string_stats.rank_histogram.buckets) or 1
            return {b.label: b.sample_count / total for b in f.string_stats.rank_histogram.buckets}
        old, now = shares(old_f), shares(new_f)
        label = max(set(old) | set(now), key=lambda k: abs(now.get(k, 0) - old.get(k, 0)), default=None)
        if label is not None:
            return f"{label!s} {old.get(label, 0):.0%} -> {now.get(label, 0):.0%}"
    return ""


_MOVED = {anomalies_pb2.AnomalyInfo.COMPARATOR_L_INFTY_HIGH,
          anomalies_pb2.AnomalyInfo.COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH}
# TFDV's presence checks (and the comparators' "no data on one side"): the missing rates
# judge these instead, so a rate within its threshold is no alarm.
_PRESENCE = {anomalies_pb2.AnomalyInfo.FEATURE_TYPE_LOW_FRACTION_PRESENT,
             anomalies_pb2.AnomalyInfo.FEATURE_TYPE_LOW_NUMBER_PRESENT,
             anomalies_pb2.AnomalyInfo.FEATURE_TYPE_NOT_PRESENT,
             anomalies_pb2.AnomalyInfo.SCHEMA_MISSING_COLUMN,
             anomalies_pb2.AnomalyInfo.COMPARATOR_CONTROL_DATA_MISSING,
             anomalies_pb2.AnomalyInfo.COMPARATOR_TREATMENT_DATA_MISSING}
# Fewer values than one in a one-value feature is an empty list: a gap written the older way.
_EMPTY = anomalies_pb2.AnomalyInfo.FEATURE_TYPE_LOW_NUMBER_VALUES


def missing_rate(statistics, name: str) -> Optional[float]:
    """The fraction of examples without a value for the feature: absent (num_missing) or,
    in a one-value feature, an empty value list. None for no examples at all."""
    rows = statistics.datasets[0].num_examples
    if not rows:
        return None
    feature = _feature_stats(statistics, name)
    if feature is None:
        return 1.0
    kind = feature.WhichOneof("stats")
    if kind is None:
        return 1.0
    common = getattr(feature, kind).common_stats
    missing = common.num_missing
    if common.max_num_values <= 1:
        missing += common.num_non_missing - common.tot_num_values
    return min(1.0, missing / rows)


# 3.291 and 3.090: the normal distribution's two-sided and one-sided 99.9% quantiles: 1 in
# 1,000 per feature keeps a healthy sample of ten features under 1 in 100 alarmed.
_Z_TWO_SIDED, _Z_ONE_SIDED = 3.291, 3.090


def _values(statistics, name: str) -> int:
    """Examples with a value of the feature."""
    feature = _feature_stats(statistics, name)
    kind = feature.WhichOneof("stats") if feature is not None else None
    return getattr(feature, kind).common_stats.num_non_missing if kind else 0


def _chi2_999(df: int) -> float:
    """The 99.9% quantile of chi-squared with df degrees of freedom (Wilson-Hilferty)."""
    h = 2 / (9 * df)
    return df * (1 - h + _Z_ONE_SIDED * math.sqrt(h)) ** 3


def noise_floor(feature: schema_pb2.Feature, new, training) -> Optional[float]:
    """The drift/skew measure a healthy sample of the new data's size exceeds by chance in
    fewer than 1 of 1,000 draws (None: nothing to bound). Two samples of n and N values of
    one distribution: a share differs by sqrt(p(1-p)(1/n + 1/N)), at most half that root,
    so L-infinity stays within 3.291 of those; Jensen-Shannon (bits) of two close
    histograms is chi-squared over k-1 degrees of freedom (k: the training histogram's
    non-empty buckets) times (1/n + 1/N) / (8 ln 2)."""
    n, big_n = _values(new, feature.name), _values(training, feature.name)
    if not n or not big_n:
        return None
    spread = 1 / n + 1 / big_n
    if is_categorical(feature):
        return _Z_TWO_SIDED * 0.5 * math.sqrt(spread)
    trained = _feature_stats(training, feature.name)
    histogram = next((h for h in trained.num_stats.histograms if h.type == h.STANDARD), None) \
        if trained.HasField("num_stats") else None
    buckets = sum(1 for b in histogram.buckets if b.sample_count > 0) if histogram else 0
    return _chi2_999(buckets - 1) * spread / (8 * math.log(2)) if buckets > 1 else None


def missing_floor(training_rate: float, rows: int, training_rows: int) -> float:
    """The missing-rate move a healthy sample of `rows` reaches by chance in fewer than 1 of
    1,000 draws: 3.291 standard deviations of the difference of two shares, plus one row."""
    spread = 1 / rows + 1 / training_rows
    return _Z_TWO_SIDED * math.sqrt(training_rate * (1 - training_rate) * spread) + 1 / rows


def _unique(texts) -> list:
    return list(dict.fromkeys(t for t in texts if t))


def verdicts(anomalies: anomalies_pb2.Anomalies, schema: schema_pb2.Schema, new, training,
             mode: str = DRIFT, missing_threshold: float = Thresholds.missing, raised=()) -> list:
    """One FeatureVerdict per schema feature, in schema order; `raised`: the features whose
    limit is their noise floor (said in the notes)."""
    rows, training_rows = new.datasets[0].num_examples, training.datasets[0].num_examples
    measured = {}
    for info in anomalies.drift_skew_info:
        for m in list(info.drift_measurements) + list(info.skew_measurements):
            if m.type in _MEASURE:
                measured[info.path.step[0]] = m
    found = []
    for feature in schema.feature:
        verdict = FeatureVerdict(feature.name, "categorical" if is_categorical(feature) else "numeric",
                                 detail=_detail(feature, new, training),
                                 missing_training=missing_rate(training, feature.name),
                                 missing=missing_rate(new, feature.name))
        if verdict.missing is not None and verdict.missing_training is not None:
            limit = max(missing_threshold, missing_floor(verdict.missing_training, rows, training_rows))
            verdict.missing_moved = abs(verdict.missing - verdict.missing_training) > limit
        if feature.name in raised:
            verdict.detail = "; ".join(t for t in (verdict.detail, f"limit: the noise of {rows} rows") if t)
        m = measured.get(feature.name)
        if m is not None:
            verdict.measure, verdict.value, verdict.threshold = _MEASURE[m.type], m.value, m.threshold
            verdict.moved = m.value > m.threshold
        info = anomalies.anomaly_info.get(feature.name)
        if info is not None:
            ignored = _MOVED | _PRESENCE | ({_EMPTY} if feature.value_count.max == 1 else set())
            verdict.anomalies = _unique(r.description or r.short_description
                                        for r in info.reason if r.type not in ignored)
        verdict.verdict = (mode.upper() if verdict.moved else MISSING if verdict.missing_moved
                           else ANOMALY if verdict.anomalies else OK)
        found.append(verdict)
    return found


def overall(found: list, mode: str) -> str:
    """The most serious verdict word of any feature, OK when none moved."""
    words = {v.verdict for v in found}
    return next((w for w in (mode.upper(), MISSING, ANOMALY) if w in words), OK)


def by_word(found: list, mode: str) -> str:
    """'DRIFT in a, b; MISSING in c' (most serious first), or 'ok'."""
    parts = [f"{w} in {', '.join(v.feature for v in found if v.verdict == w)}"
             for w in (mode.upper(), MISSING, ANOMALY) if any(v.verdict == w for v in found)]
    return "; ".join(parts) or OK


# A role's columns are no model input, and new data differs in them by nature (new
# customers have new ids, new rows later dates): they are listed, never judged.
ROLE_NAMES = {"identifiers": "identifier", "datetimes": "date/time", "text": "free text"}


def not_judged_columns(column_roles: Optional[dict]) -> dict:
    """{column: why it is not judged} from a version's column roles (components/transform/
    column_roles.py: identifiers, datetimes, text)."""
    return {name: why for role, why in ROLE_NAMES.items() for name in (column_roles or {}).get(role) or ()}


@dataclasses.dataclass
class Judgement:
    anomalies: anomalies_pb2.Anomalies
    verdicts: list
    mode: str
    unjudged_label: Optional[str]  # the label, when the new data has no values for it
    not_judged: dict = dataclasses.field(default_factory=dict)  # {column: role} left out

    @property
    def word(self) -> str:
        return overall(self.verdicts, self.mode)


def _without(schema: schema_pb2.Schema, names) -> None:
    kept = [f for f in schema.feature if f.name not in names]
    del schema.feature[:]
    schema.feature.extend(kept)


def judge(new, training, schema: schema_pb2.Schema, mode: str, label: Optional[str],
          thresholds: Thresholds, column_roles: Optional[dict] = None) -> Judgement:
    """New statistics against training's under the served schema: anomalies and verdicts.
    A label without values in the new data is no feature of the comparison, nor are the
    columns whose role keeps them out of the model (identifiers, dates, free text)."""
    floors = {f.name: floor for f in schema.feature
              if (floor := noise_floor(f, new, training)) is not None and floor > thresholds.of(f)}
    schema = with_comparators(schema, thresholds, mode, label, floors)
    unjudged = None
    if label and any(f.name == label for f in schema.feature) and missing_rate(new, label) == 1.0:
        unjudged = label
        _without(schema, {label})
    present = {f.name for f in schema.feature}
    not_judged = {k: v for k, v in not_judged_columns(column_roles).items() if k in present and k != label}
    for feature in schema.feature:
        if feature.name in not_judged:  # kept in the schema (else "new column"), never validated
            feature.ClearField("drift_comparator")
            feature.ClearField("skew_comparator")
            feature.lifecycle_stage = schema_pb2.LifecycleStage.DEPRECATED
    inputs = [f.name for f in schema.feature if f.name != label and f.name not in not_judged]
    if inputs and all(missing_rate(new, name) in (None, 1.0) for name in inputs):
        # Without this a file of other columns (or another delimiter) was "ok", exit 0.
        shown = ", ".join(inputs[:10]) + (f", ... ({len(inputs) - 10} more)" if len(inputs) > 10 else "")
        raise InputError(f"none of the model's input features has a value in the new data ({shown}): "
                         "wrong file, or another header?")
    anomalies = compare(new, training, schema, mode)
    judged = copy.deepcopy(schema)
    _without(judged, set(not_judged))
    return Judgement(anomalies, verdicts(anomalies, judged, new, training, mode, thresholds.missing, set(floors)),
                     mode, unjudged, not_judged)
