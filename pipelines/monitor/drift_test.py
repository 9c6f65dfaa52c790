"""Drift verdicts on statistics of real CSV (the embedded data), without a pipeline run:
the comparators TFDV applies, thresholds per kind and per feature, skew without labels."""
from __future__ import annotations

import csv

import pytest
import tensorflow_data_validation as tfdv

from kubetfx.pipelines.config import ConfigError, PipelineConfig
from kubetfx.pipelines.monitor import drift, new_statistics
from kubetfx.pipelines.run.inputs import CURATED_SCHEMA

EMBEDDED = PipelineConfig().data + "/penguins.csv"


def _csv(path, island=None, bill_shift=0.0, drop=(), blank=None, every=0):
    """The embedded data, changed; `blank`: that column emptied in every `every`-th row."""
    with open(EMBEDDED, newline="") as f:
        rows = list(csv.DictReader(f))
    for i, row in enumerate(rows):
        if blank and i % every == 0:
            row[blank] = ""
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


def _judge(path, mode=drift.DRIFT, **thresholds):
    config = PipelineConfig(**thresholds)
    schema = tfdv.load_schema_text(str(CURATED_SCHEMA))
    training = new_statistics.statistics(new_statistics.csv_examples(EMBEDDED), schema)
    new = new_statistics.statistics(new_statistics.csv_examples(path), schema)
    return drift.judge(new, training, schema, mode, "species", drift.Thresholds.from_config(config))


def _verdicts(path, mode=drift.DRIFT, **thresholds):
    return {v.feature: v for v in _judge(path, mode, **thresholds).verdicts}


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
    judged = _judge(_csv(tmp_path / "requests.csv", drop=("species",)), mode=drift.SKEW)
    verdicts = {v.feature: v for v in judged.verdicts}
    assert judged.unjudged_label == "species" and "species" not in verdicts and judged.word == drift.OK
    assert verdicts["island"].ok and verdicts["island"].value is not None


def test_new_data_without_the_label_column_is_judged_without_it(tmp_path):
    judged = _judge(_csv(tmp_path / "production.csv", drop=("species",)))
    assert judged.unjudged_label == "species" and judged.word == drift.OK
    assert "species" not in {v.feature for v in judged.verdicts} and all(v.ok for v in judged.verdicts)
    with_label = _judge(_csv(tmp_path / "labelled.csv"))
    assert with_label.unjudged_label is None and "species" in {v.feature for v in with_label.verdicts}


def test_a_missing_rate_within_the_threshold_is_ok_though_tfdv_reports_presence(tmp_path):
    """The curated schema wants bill_length_mm in 95% of examples; 1 in 13 rows empty
    (7.7%) breaks that, but moves the rate by less than the 0.1 default."""
    judged = _judge(_csv(tmp_path / "gaps.csv", drop=("species",), blank="bill_length_mm", every=13))
    reasons = [r.short_description for r in judged.anomalies.anomaly_info["bill_length_mm"].reason]
    assert reasons, "TFDV no longer reports presence below min_fraction: this test checks nothing"
    bill = next(v for v in judged.verdicts if v.feature == "bill_length_mm")
    assert 0.07 < bill.missing < 0.09 and bill.missing_training < 0.01
    assert bill.verdict == drift.OK and judged.word == drift.OK, bill


def test_a_missing_rate_past_the_threshold_is_MISSING(tmp_path):
    judged = _judge(_csv(tmp_path / "gaps.csv", drop=("species",), blank="sex", every=3))
    sex = next(v for v in judged.verdicts if v.feature == "sex")
    assert sex.verdict == drift.MISSING and sex.missing_moved and judged.word == drift.MISSING
    assert drift.by_word(judged.verdicts, drift.DRIFT) == "MISSING in sex"
    looser = _judge(_csv(tmp_path / "gaps.csv", drop=("species",), blank="sex", every=3),
                    drift_missing_rate_threshold=0.5)
    assert looser.word == drift.OK


def _statistics_of(gap):
    """10 examples of feature x, 3 of them gaps written as `gap`: "absent" or "empty"."""
    from tensorflow.core.example import example_pb2
    from tensorflow_metadata.proto.v0 import schema_pb2

    examples = []
    for i in range(10):
        example = example_pb2.Example()
        if i >= 3:
            example.features.feature["x"].float_list.value.append(float(i))
        elif gap == "empty":
            example.features.feature["x"].float_list.SetInParent()
        examples.append(example.SerializeToString())
    schema = schema_pb2.Schema(feature=[schema_pb2.Feature(name="x", type=schema_pb2.FLOAT)])
    return new_statistics.statistics(examples, schema)


@pytest.mark.parametrize("gap", ["absent", "empty"])
def test_a_missing_rate_reads_either_representation_of_a_gap(gap):
    """An older model's training statistics have empty lists (num_missing 0) where a newer
    ExampleGen leaves the feature out."""
    statistics = _statistics_of(gap)
    assert drift.missing_rate(statistics, "x") == pytest.approx(0.3)
    assert drift.missing_rate(statistics, "not_there") == 1.0


def test_the_verdict_word_is_the_most_serious_of_the_features(tmp_path):
    judged = _judge(_csv(tmp_path / "shifted.csv", drop=("species",), island="Biscoe", blank="sex", every=3))
    words = {v.feature: v.verdict for v in judged.verdicts}
    assert words["island"] == "DRIFT" and words["sex"] == "MISSING" and judged.word == "DRIFT"
    assert drift.by_word(judged.verdicts, drift.DRIFT) == "DRIFT in island; MISSING in sex"


@pytest.mark.parametrize("fields, message", [
    ({"drift_numeric_threshold": 0}, "drift_numeric_threshold must be a number in (0, 1]"),
    ({"drift_feature_thresholds": {"island": "high"}}, "drift_feature_thresholds[island]"),
    ({"drift_missing_rate_threshold": 1.5}, "drift_missing_rate_threshold must be a number in (0, 1]"),
])
def test_bad_thresholds_are_config_errors(fields, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        drift.Thresholds.from_config(PipelineConfig(**fields))


def test_a_threshold_for_a_feature_the_model_lacks_is_a_config_error():
    thresholds = drift.Thresholds(0.2, 0.2, {"beak_colour": 0.3})
    with pytest.raises(ConfigError, match="beak_colour"):
        drift.with_comparators(tfdv.load_schema_text(str(CURATED_SCHEMA)), thresholds, drift.DRIFT, None)


def _counts_statistics(values, boundaries_of=None):
    """Statistics of one INT feature `calls`; counted on the boundaries of `boundaries_of`."""
    from tensorflow.core.example import example_pb2
    from tensorflow_metadata.proto.v0 import schema_pb2

    examples = []
    for value in values:
        example = example_pb2.Example()
        example.features.feature["calls"].int64_list.value.append(value)
        examples.append(example.SerializeToString())
    schema = schema_pb2.Schema(feature=[schema_pb2.Feature(name="calls", type=schema_pb2.INT)])
    boundaries = new_statistics.standard_boundaries(boundaries_of) if boundaries_of else None
    return new_statistics.statistics(examples, schema, boundaries), schema


def test_a_small_integer_feature_is_compared_on_the_training_buckets():
    """A 0-12 count: TFDV re-buckets a sample's histogram (other edges) as if values were
    spread inside buckets, and a healthy sample of 100 read 0.169 > 0.15; counted on the
    training edges it reads sampling noise, and a shift by 2 still drifts."""
    import random

    rng = random.Random(11)
    values = [min(int(rng.expovariate(0.7)), 12) for _ in range(1500)]
    training, schema = _counts_statistics(values)
    sample = random.Random(13).sample(values, 100)
    thresholds = drift.Thresholds(0.2, 0.15, {})

    def jsd(new):
        return drift.judge(new, training, schema, drift.DRIFT, None, thresholds).verdicts[0]

    assert jsd(_counts_statistics(sample)[0]).value > 0.15  # TFDV's own buckets: a false alarm
    aligned = jsd(_counts_statistics(sample, boundaries_of=training)[0])
    assert aligned.value < 0.05 and aligned.ok
    shifted = jsd(_counts_statistics([v + 2 for v in sample], boundaries_of=training)[0])
    assert shifted.verdict == "DRIFT", shifted.value


def test_columns_that_are_no_model_input_are_listed_not_judged(tmp_path):
    """A column the run found to be an identifier (or a date, or free text) differs in new
    data by nature: an island that moved all the way would be DRIFT as a feature, and is
    not judged at all as an identifier."""
    path = _csv(tmp_path / "shifted.csv", island="Biscoe", drop=("species",))
    config = PipelineConfig()
    schema = tfdv.load_schema_text(str(CURATED_SCHEMA))
    training = new_statistics.statistics(new_statistics.csv_examples(EMBEDDED), schema)
    new = new_statistics.statistics(new_statistics.csv_examples(path), schema)
    thresholds = drift.Thresholds.from_config(config)
    as_feature = drift.judge(new, training, schema, drift.DRIFT, "species", thresholds)
    assert as_feature.word == "DRIFT" and as_feature.not_judged == {}
    as_id = drift.judge(new, training, schema, drift.DRIFT, "species", thresholds,
                        {"identifiers": ["island"], "datetimes": ["year"], "text": []})
    assert as_id.not_judged == {"island": "identifier", "year": "date/time"}
    assert {"island", "year"}.isdisjoint(v.feature for v in as_id.verdicts) and as_id.word == drift.OK
    assert "island" not in as_id.anomalies.anomaly_info


@pytest.mark.parametrize("header, rows, message", [
    ("foo,bar", ["1,2", "3,4"], "none of the model's input features"),   # said "ok" and exit 0 (0 rows)
    ("species", ["Adelie", "Gentoo"], "none of the model's input features"),  # the label only
])
def test_new_data_without_any_model_input_is_bad_input(tmp_path, header, rows, message):
    from kubetfx.components.example_gen.csv_input import InputError

    path = tmp_path / "new.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    with pytest.raises(InputError, match=message):
        _judge(str(path))


@pytest.mark.parametrize("text, message", [
    ("species;island;bill_length_mm\nAdelie;Dream;40\n", "separates columns with semicolons"),  # exit 0, "ok"
    ("species,island,island\nAdelie,Dream,Biscoe\n", "duplicate column names in its header: 'island'"),  # traceback
    ("", "is empty"),
])
def test_new_csv_gets_the_pipelines_one_line_header_checks(tmp_path, text, message):
    from kubetfx.components.example_gen.csv_input import InputError

    path = tmp_path / "new.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        list(new_statistics.csv_examples(str(path)))


def test_a_record_that_is_not_a_tf_example_is_bad_input_not_a_traceback():
    # A foreign file in the inference log folder: RuntimeError DATA_LOSS, exit 1 with a traceback.
    from kubetfx.components.example_gen.csv_input import InputError

    schema = tfdv.load_schema_text(str(CURATED_SCHEMA))
    with pytest.raises(InputError, match="not a serialized tf.Example"):
        new_statistics.statistics([b"hello, not an example"], schema)


def test_new_data_that_is_neither_file_nor_folder_is_one_line():
    # --data /dev/zero: NotADirectoryError traceback, exit 1.
    from kubetfx.components.example_gen.csv_input import InputError

    with pytest.raises(InputError, match="/dev/zero is a character device, not a regular file"):
        list(new_statistics.csv_examples("/dev/zero"))


@pytest.fixture(scope="module")
def curated():
    """(schema, training statistics) of the embedded data, read once for the module."""
    schema = tfdv.load_schema_text(str(CURATED_SCHEMA))
    return schema, new_statistics.statistics(new_statistics.csv_examples(EMBEDDED), schema)


def _judge_as_served(path, curated):
    """As `kubetfx monitor --data` reads new data: typed by the served schema, histograms
    on the training buckets."""
    schema, training = curated
    new = new_statistics.statistics(new_statistics.csv_examples(str(path), schema), schema,
                                    new_statistics.standard_boundaries(training))
    return drift.judge(new, training, schema, drift.DRIFT, "species", drift.Thresholds.from_config(PipelineConfig()))


def test_a_pandas_export_of_the_training_data_is_ok(tmp_path, curated):
    """pandas reads an int column with gaps as float64 and writes it back as 181.0: the
    monitor read flipper_length_mm and body_mass_g as FLOAT features of an INT schema,
    'ANOMALY: Expected data of type: INT but got FLOAT', exit 11 on the training rows."""
    import pandas as pd

    path = tmp_path / "pandas.csv"
    pd.read_csv(EMBEDDED).to_csv(path, index=False)
    assert ",181.0,3750.0," in path.read_text()
    judged = _judge_as_served(path, curated)
    assert judged.word == drift.OK, [(v.feature, v.verdict, v.anomalies) for v in judged.verdicts if not v.ok]


def test_fractions_in_an_int_feature_are_still_a_type_anomaly(tmp_path, curated):
    """Typing by the schema converts only what converts without loss: 3750.5 g stays a
    float, and TFDV's type anomaly names it."""
    import pandas as pd

    frame = pd.read_csv(EMBEDDED)
    frame.loc[frame.index[::10], "body_mass_g"] += 0.5
    path = tmp_path / "fractions.csv"
    frame.to_csv(path, index=False)
    verdicts = {v.feature: v for v in _judge_as_served(path, curated).verdicts}
    assert verdicts["body_mass_g"].verdict == drift.ANOMALY
    assert any("INT" in text and "FLOAT" in text for text in verdicts["body_mass_g"].anomalies)
    assert verdicts["flipper_length_mm"].ok  # whole numbers written as 181.0: converted


def _sample(path, rows: int, seed: int, island=None, bill_shift=0.0):
    """`rows` rows of the embedded data drawn at random (fixed seed), without the label."""
    import random

    with open(EMBEDDED, newline="") as f:
        drawn = random.Random(seed).sample(list(csv.DictReader(f)), rows)
    for row in drawn:
        del row["species"]
        row["island"] = island or row["island"]
        if row["bill_length_mm"]:
            row["bill_length_mm"] = f"{float(row['bill_length_mm']) + bill_shift:.1f}"
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(drawn[0]))
        writer.writeheader()
        writer.writerows(drawn)
    return path


@pytest.mark.parametrize("rows", [1, 10])
def test_a_healthy_sample_of_a_few_rows_is_ok(tmp_path, curated, rows):
    """A quiet hour's few requests: one row was DRIFT in every feature (island at
    L-infinity 0.85), ten rows in four (island 0.24, body_mass_g 0.35 Jensen-Shannon) at
    the 0.2/0.15 defaults. The limits rise to what that many rows reach by chance."""
    judged = _judge_as_served(_sample(tmp_path / "few.csv", rows, seed=3), curated)
    assert judged.word == drift.OK, [(v.feature, v.verdict, v.value, v.threshold) for v in judged.verdicts]
    island = next(v for v in judged.verdicts if v.feature == "island")
    assert island.threshold > 0.2 and f"limit: the noise of {rows} rows" in island.detail


def test_a_small_shifted_sample_still_drifts(tmp_path, curated):
    judged = _judge_as_served(_sample(tmp_path / "shifted.csv", 30, seed=3, island="Biscoe", bill_shift=15), curated)
    words = {v.feature: v.verdict for v in judged.verdicts}
    assert words["island"] == words["bill_length_mm"] == "DRIFT", words
    assert {w for name, w in words.items() if name not in ("island", "bill_length_mm")} == {"ok"}, words


def test_at_the_sizes_the_defaults_were_set_for_the_defaults_decide(tmp_path, curated):
    schema, training = curated
    new = new_statistics.statistics(new_statistics.csv_examples(str(_sample(tmp_path / "s.csv", 150, 3)), schema),
                                    schema)
    thresholds = drift.Thresholds.from_config(PipelineConfig())
    floors = {f.name: drift.noise_floor(f, new, training) for f in schema.feature if f.name != "species"}
    assert all(floor < thresholds.of(f) for f in schema.feature if (floor := floors.get(f.name)) is not None), floors
