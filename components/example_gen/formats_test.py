"""Parquet and TFRecord in: each Parquet type's tf.Example kind, missing values, the
executor's splits for both formats, and the task from a typed label (refusals: bad_inputs)."""
from __future__ import annotations

import datetime
import decimal
import json

import pyarrow as pa
import pytest

import data_formats
from kubetfx.components.example_gen import data_format, executor, parquet_input, tfrecord_input


def _examples(records: list) -> list:
    import tensorflow as tf

    return [tf.train.Example.FromString(r) for r in records]


def _values(example) -> dict:
    out = {}
    for name, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        out[name] = (kind, list(getattr(feature, kind).value))
    return out


def test_parquet_types_become_the_kinds_a_csv_cell_would_get(tmp_path):
    table = pa.table({
        "small": pa.array([-3], pa.int8()), "unsigned": pa.array([7], pa.uint32()), "flag": pa.array([True]),
        "half": pa.array([1.5], pa.float32()), "price": pa.array([decimal.Decimal("2.25")]),
        "name": pa.array(["Biscoe"], pa.large_string()), "blob": pa.array([b"\x00\x01"]),
        "at": pa.array([datetime.datetime(2024, 1, 14, 0, 47, 33)], pa.timestamp("us")),
        "at_utc": pa.array([datetime.datetime(2024, 1, 14, 0, 47, 33)], pa.timestamp("ms", tz="UTC")),
        "day": pa.array([datetime.date(2024, 1, 14)]),
        "island": pa.array(["Dream"]).dictionary_encode(), "nothing": pa.array([None], pa.null()),
    })
    path = data_formats.write_parquet(tmp_path / "t.parquet", table)
    [(records, keys)] = list(parquet_input.encoded_batches([path]))
    assert keys == records  # each Example is its own split key
    values = _values(_examples(records)[0])
    assert values == {
        "small": ("int64_list", [-3]), "unsigned": ("int64_list", [7]), "flag": ("int64_list", [1]),
        "half": ("float_list", [1.5]), "price": ("float_list", [2.25]),
        "name": ("bytes_list", [b"Biscoe"]), "blob": ("bytes_list", [b"\x00\x01"]),
        "at": ("bytes_list", [b"2024-01-14 00:47:33.000000"]), "at_utc": ("bytes_list", [b"2024-01-14 00:47:33.000Z"]),
        "day": ("bytes_list", [b"2024-01-14"]), "island": ("bytes_list", [b"Dream"]),
    }  # the all-null column: no value, no feature
    # Dates and times are ISO text, which column_roles takes for date/time columns.
    sample = parquet_input.sample([path])
    assert pa.types.is_timestamp(sample.column("at").type) and pa.types.is_date(sample.column("day").type)


@pytest.mark.parametrize("column", [pa.array([[1, 2]]), pa.array([{"x": 1}]),
                                    pa.array([[("k", 1)]], pa.map_(pa.string(), pa.int64()))],
                         ids=["list", "struct", "map"])
def test_a_nested_parquet_column_is_refused_naming_it(tmp_path, column):
    path = data_formats.write_parquet(tmp_path / "t.parquet", pa.table({"y": ["a"], "deep": column}))
    with pytest.raises(data_format.InputError, match=r"column 'deep' is nested \(") as raised:
        data_format.check(str(path), "y")
    assert "\n" not in str(raised.value)


def test_parquet_nulls_and_nan_are_missing_values_and_blank_rows_are_dropped(tmp_path):
    table = pa.table({"x": pa.array([1.0, None, float("nan"), None]), "y": pa.array(["a", "b", "c", None])})
    path = data_formats.write_parquet(tmp_path / "t.parquet", table)
    records = [r for batch, _ in parquet_input.encoded_batches([path]) for r in batch]
    assert [_values(e) for e in _examples(records)] == [
        {"x": ("float_list", [1.0]), "y": ("bytes_list", [b"a"])},
        {"y": ("bytes_list", [b"b"])}, {"y": ("bytes_list", [b"c"])}]  # the row of only nulls: gone


def test_tfrecords_plain_and_gzip_read_alike_and_unchanged(tmp_path):
    records = [data_formats.example(species="Adelie", mass=3750), data_formats.example(species="Gentoo", mass=[1, 2])]
    plain = data_formats.write_tfrecords(tmp_path / "a" / "p.tfrecord", records)
    zipped = data_formats.write_tfrecords(tmp_path / "b" / "data_tfrecord-00000-of-00001.gz", records, compress=True)
    assert list(tfrecord_input.records(plain)) == list(tfrecord_input.records(zipped)) == records
    assert data_format.data_files(str(zipped.parent)) == (data_format.TFRECORD, [zipped])


@pytest.mark.parametrize("label, task", [(["a", "b"], "classification"), ([1, 2], "classification"),
                                         ([1.5, 2.5], "regression"), ([True, False], "classification"),
                                         (list(range(30)), "regression")])
def test_the_task_follows_the_typed_label(label, task):
    assert data_format.task_of(pa.array(label)) == task


def _run(tmp_path, folder, pattern):
    from tfx.types import standard_artifacts

    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "out")
    splits = [{"name": name, "hash_buckets": buckets} for name, buckets in executor.DEFAULT_SPLITS]
    executor.Executor().Do({}, {"examples": [examples]}, {
        "input_base": str(folder), "input_config": json.dumps({"splits": [{"name": "single_split", "pattern": pattern}]}),
        "output_config": json.dumps({"split_config": {"splits": splits}}),
        "output_data_format": 6, "output_file_format": 5})
    return examples


def _read_splits(examples) -> dict:
    import tensorflow as tf
    from tfx.types import artifact_utils

    out = {}
    for name in artifact_utils.decode_split_names(examples.split_names):
        files = tf.io.gfile.glob(f"{examples.uri}/Split-{name}/*.gz")
        out[name] = [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]
    return out


def test_example_gen_writes_parquet_and_tfrecords_into_the_shared_splits(tmp_path):
    rows = 600
    table = pa.table({"n": pa.array(range(rows)), "s": pa.array([f"v{i % 7}" for i in range(rows)])})
    data_formats.write_parquet(tmp_path / "pq" / "part-0.parquet", table)
    written = _read_splits(_run(tmp_path / "p", tmp_path / "pq", "*.parquet"))
    assert list(written) == [name for name, _ in executor.DEFAULT_SPLITS]
    every = [r for records in written.values() for r in records]
    assert sorted(_values(e)["n"][1][0] for e in _examples(every)) == list(range(rows))
    # TFRecords: the same records, byte for byte, each in the split its bytes hash to.
    data_formats.write_tfrecords(tmp_path / "tfr" / "x.tfrecord.gz", every, compress=True)
    imported = _read_splits(_run(tmp_path / "t", tmp_path / "tfr", "*tfrecord*"))
    assert {name: sorted(records) for name, records in imported.items()} == \
           {name: sorted(records) for name, records in written.items()}


def test_rare_classes_are_counted_in_train_as_example_gen_places_them(tmp_path):
    """The up-front count of a rare class's rows in the train split (the rare-in-train
    check) agrees with what the executor writes, for Parquet and for TFRecords."""
    counts = {"Adelie": 40, "Gentoo": 30, "Chinstrap": 5}
    labels = [name for name, n in counts.items() for _ in range(n)]
    table = pa.table({"species": labels, "bill": [40.0 + i * 0.25 for i in range(len(labels))]})
    data_formats.write_parquet(tmp_path / "pq" / "p.parquet", table)
    written = _read_splits(_run(tmp_path / "p", tmp_path / "pq", "*.parquet"))
    in_train = sum(_values(e)["species"][1] == [b"Chinstrap"] for e in _examples(written["train"]))
    data_formats.write_tfrecords(tmp_path / "tfr" / "t.tfrecord", [r for rs in written.values() for r in rs])
    for folder in (tmp_path / "pq", tmp_path / "tfr"):
        kind, files = data_format.data_files(str(folder))
        reader = parquet_input if kind == data_format.PARQUET else tfrecord_input
        assert reader.train_rows_of(files, "species", {"Chinstrap"}) == {"Chinstrap": in_train}
        warning = data_format.check(str(folder), "species", rare_in_train="warn")
        assert (warning is not None) == (in_train < 3), warning


@pytest.mark.slow  # TFX's stock executors are Beam pipelines
@pytest.mark.parametrize("kind", ["parquet", "tfrecord"])
def test_input_splits_of_their_own_go_to_tfxs_executor_for_the_format(tmp_path, kind):
    """Anything but one input split hashed into output splits is TFX's: the Parquet custom
    executor or ImportExampleGen's, not CsvExampleGen's (which would parse the bytes as CSV)."""
    from tfx.types import standard_artifacts

    rows = [data_formats.example(n=i, s=f"v{i % 3}") for i in range(30)]
    if kind == "parquet":
        data_formats.write_parquet(tmp_path / "in" / "a.parquet", pa.table({"n": list(range(30))}))
        pattern = "*.parquet"
    else:
        data_formats.write_tfrecords(tmp_path / "in" / "a.tfrecord", rows)
        pattern = "*tfrecord*"
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "out")
    executor.Executor().Do({}, {"examples": [examples]}, {
        "input_base": str(tmp_path / "in"),
        "input_config": json.dumps({"splits": [{"name": "train", "pattern": pattern}, {"name": "eval", "pattern": pattern}]}),
        "output_config": json.dumps({}), "output_data_format": 6, "output_file_format": 5})
    written = _read_splits(examples)
    assert set(written) == {"train", "eval"} and len(written["train"]) == len(written["eval"]) == 30
    if kind == "tfrecord":
        assert sorted(written["train"]) == sorted(rows)  # imported byte for byte
