"""Drift verdicts on statistics of real CSV (the embedded data), without a pipeline run:
the comparators TFDV applies, thresholds per kind and per feature, skew without labels."""
from __future__ import annotations

import csv

import pytest
import tensorflow_data_validation as tfdv

from kubetfx.pipelines.config import ConfigError, PipelineConfig
from kubetfx.pipelines.monitor import drift, new_statistics
from kubetfx.pipelines.prepare import CURATED_SCHEMA

EMBEDDED = PipelineConfig().data + "/penguins.csv"


def _csv(path, island=None, bill_shift=0.0, drop=()):
    with open(EMBEDDED, newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        if island:
            row["island"] = island
        if row["bill_length_mm"]:
            row["bill_length_mm"] = f"{float(row['bill_length_mm']) + bill_shift:.1f}"
        for column in drop:
            del row[column]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return str(path)


def _verdicts(path, mode=drift.DRIFT, **thresholds):
    config = PipelineConfig(**thresholds)
    schema = drift.with_comparators(tfdv.load_schema_text(str(CURATED_SCHEMA)), drift.Thresholds.from_config(config),
                                    mode, "species")
    training = new_statistics.statistics(new_statistics.csv_examples(EMBEDDED), schema)
    new = new_statistics.statistics(new_statistics.csv_examples(path), schema)
    anomalies = drift.compare(new, training, schema, mode)
    return {v.feature: v for v in drift.verdicts(anomalies, schema, new, training)}


def test_the_same_data_moves_nothing(tmp_path):
    verdicts = _verdicts(_csv(tmp_path / "same.csv"))
    assert all(v.ok for v in verdicts.values()), verdicts
    assert verdicts["island"].measure == "L-infinity" and verdicts["bill_length_mm"].measure == "Jensen-Shannon"


def test_shifted_features_drift_and_the_others_do_not(tmp_path):
    verdicts = _verdicts(_csv(tmp_path / "shifted.csv", island="Biscoe", bill_shift=8))
    assert verdicts["island"].moved and verdicts["bill_length_mm"].moved
    assert verdicts["island"].detail.startswith("Biscoe")
    assert not any(v.moved for name, v in verdicts.items() if name not in ("island", "bill_length_mm"))


def test_a_per_feature_threshold_overrides_the_kind_default(tmp_path):
    path = _csv(tmp_path / "shifted.csv", island="Biscoe")
    assert _verdicts(path)["island"].moved
    assert not _verdicts(path, drift_feature_thresholds={"island": 0.9})["island"].moved


def test_requests_without_the_label_are_skew_not_an_anomaly(tmp_path):
    verdicts = _verdicts(_csv(tmp_path / "requests.csv", drop=("species",)), mode=drift.SKEW)
    assert verdicts["species"].ok and verdicts["species"].measure is None
    assert verdicts["island"].ok and verdicts["island"].value is not None


@pytest.mark.parametrize("fields, message", [
    ({"drift_numeric_threshold": 0}, "drift_numeric_threshold must be a number in (0, 1]"),
    ({"drift_feature_thresholds": {"island": "high"}}, "drift_feature_thresholds[island]"),
])
def test_bad_thresholds_are_config_errors(fields, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        drift.Thresholds.from_config(PipelineConfig(**fields))


def test_a_threshold_for_a_feature_the_model_lacks_is_a_config_error():
    thresholds = drift.Thresholds(0.2, 0.2, {"beak_colour": 0.3})
    with pytest.raises(ConfigError, match="beak_colour"):
        drift.with_comparators(tfdv.load_schema_text(str(CURATED_SCHEMA)), thresholds, drift.DRIFT, None)
