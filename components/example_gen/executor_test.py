"""The fast ExampleGen writes what CsvExampleGen writes: same examples, same splits."""
from __future__ import annotations

import glob
import json
import os

import pytest

from kubetfx.components.example_gen import executor as fast


def _read(uri: str, split: str) -> list:
    import tensorflow as tf

    files = glob.glob(os.path.join(uri, f"Split-{split}", "*.gz"))
    return [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]


def _as_dict(example) -> dict:
    out = {}
    for name, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        values = tuple(getattr(feature, kind).value) if kind else ()
        if values:  # a missing value is a feature without values, as CsvExampleGen writes it
            out[name] = (kind, values)
    return out


def run_example_gen(executor_class, csv_dir, out_dir, **more_properties):
    """One ExampleGen execution on a CSV folder, train:eval 2:1 (also used by tests/)."""
    from tfx.types import standard_artifacts

    examples = standard_artifacts.Examples()
    examples.uri = str(out_dir)
    exec_properties = {
        "input_base": str(csv_dir),
        "input_config": json.dumps({"splits": [{"name": "single_split", "pattern": "*.csv"}]}),
        "output_config": json.dumps({"split_config": {"splits": [{"name": "train", "hash_buckets": 2},
                                                                 {"name": "eval", "hash_buckets": 1}]}}),
        "output_data_format": 6, "output_file_format": 5, **more_properties,
    }
    executor_class().Do({}, {"examples": [examples]}, exec_properties)
    return examples


@pytest.fixture
def csv_dir(tmp_path):
    folder = tmp_path / "csv"
    folder.mkdir()
    lines = ["count,price,name"]
    for i in range(3000):
        count = "" if i % 7 == 0 else str(i % 50)  # ints with missing values stay ints
        price = "NA" if i % 11 == 0 else f"{i * 0.25:.2f}"
        lines.append(f"{count},{price},name{i % 13}")
    (folder / "part.csv").write_text("\n".join(lines) + "\n")
    return folder


def test_types_missing_values_and_split_proportions(csv_dir, tmp_path):
    artifact = run_example_gen(fast.Executor, csv_dir, tmp_path / "out")
    assert json.loads(artifact.split_names) == ["train", "eval"]
    train, evaluation = _read(artifact.uri, "train"), _read(artifact.uri, "eval")
    assert len(train) + len(evaluation) == 3000
    assert 0.62 < len(train) / 3000 < 0.72  # 2:1 hash buckets
    rows = [_as_dict(e) for e in train + evaluation]
    assert {r["count"][0] for r in rows if "count" in r} == {"int64_list"}
    assert {r["price"][0] for r in rows if "price" in r} == {"float_list"}
    assert sum("count" not in r for r in rows) == len(range(0, 3000, 7))  # missing = no value
    assert sum("price" not in r for r in rows) == len(range(0, 3000, 11))  # "NA" = missing
    assert artifact.get_string_custom_property("payload_format") == "FORMAT_TF_EXAMPLE"


def test_a_missing_value_is_left_out_of_the_example(csv_dir, tmp_path):
    """One representation of a missing value, the one a request that leaves the field out
    has: no feature at all, never an empty value list (which TFDV counts as present)."""
    artifact = run_example_gen(fast.Executor, csv_dir, tmp_path / "out")
    examples = _read(artifact.uri, "train") + _read(artifact.uri, "eval")
    features = [e.features.feature for e in examples]
    assert sum("count" not in f for f in features) == len(range(0, 3000, 7))
    assert sum("price" not in f for f in features) == len(range(0, 3000, 11))
    assert all(len(getattr(f[n], f[n].WhichOneof("kind")).value) == 1 for f in features for n in f)


@pytest.mark.slow  # the stock path is a real Beam pipeline
def test_the_stock_path_leaves_missing_values_out_too(csv_dir, tmp_path):
    """Input splits of their own (no hash split) go to TFX's executor: its Examples get the
    same representation of a missing value as the fast path's."""
    from tfx.types import standard_artifacts

    (csv_dir / "part.csv").write_text((csv_dir / "part.csv").read_text().replace(",NA,", ",,"))
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "stock_path")
    fast.Executor().Do({}, {"examples": [examples]}, {
        "input_base": str(csv_dir),
        "input_config": json.dumps({"splits": [{"name": "train", "pattern": "*.csv"},
                                               {"name": "eval", "pattern": "*.csv"}]}),
        "output_config": json.dumps({}), "output_data_format": 6, "output_file_format": 5})
    features = [e.features.feature for e in _read(examples.uri, "train")]
    assert len(features) == 3000
    assert sum("count" not in f for f in features) == len(range(0, 3000, 7))
    assert sum("price" not in f for f in features) == len(range(0, 3000, 11))


@pytest.mark.slow  # stock CsvExampleGen is a real Beam pipeline
def test_same_examples_in_the_same_splits_as_csv_example_gen(csv_dir, tmp_path):
    from tfx.components.example_gen.csv_example_gen import executor as stock

    # CsvExampleGen reads "NA" as a string: give it empty fields instead.
    (csv_dir / "part.csv").write_text((csv_dir / "part.csv").read_text().replace(",NA,", ",,"))
    ours = run_example_gen(fast.Executor, csv_dir, tmp_path / "ours")
    theirs = run_example_gen(stock.Executor, csv_dir, tmp_path / "theirs")
    for split in ("train", "eval"):
        key = lambda d: sorted(d.items())  # noqa: E731
        mine = sorted((_as_dict(e) for e in _read(ours.uri, split)), key=key)
        stock_rows = sorted((_as_dict(e) for e in _read(theirs.uri, split)), key=key)
        assert len(mine) == len(stock_rows) and mine == stock_rows, split


def test_deterministic_output(csv_dir, tmp_path):
    a = run_example_gen(fast.Executor, csv_dir, tmp_path / "a")
    b = run_example_gen(fast.Executor, csv_dir, tmp_path / "b")
    for split in ("train", "eval"):
        assert [e.SerializeToString() for e in _read(a.uri, split)] == [e.SerializeToString() for e in _read(b.uri, split)]


@pytest.mark.parametrize("buckets", [[2, 1], [1], [7, 2, 1], [2**30, 2**30 - 1, 2**29]])
def test_records_are_split_as_tfx_splits_them(buckets):
    import hashlib

    import numpy as np
    from tfx.components.example_gen.base_example_gen_executor import _PartitionFn
    from tfx.proto import example_gen_pb2

    records = [hashlib.sha512(str(i).encode()).digest()[: i % 90] for i in range(3000)]
    boundaries = list(np.cumsum(buckets))
    theirs = [_PartitionFn(r, len(buckets), boundaries, example_gen_pb2.SplitConfig()) for r in records]
    assert fast.splits_of(records, boundaries).tolist() == theirs
    assert len(set(theirs)) == len(buckets)


def test_label_counts_per_split_place_rows_as_the_executor_does(tmp_path):
    """The rare-class check before a run counts the train split without running ExampleGen:
    its counts must be those of the examples the executor writes."""
    import random

    folder = tmp_path / "csv"
    folder.mkdir()
    rnd = random.Random(1)
    lines = ["x,kind,y"] + [f"{'' if i % 5 == 0 else rnd.random():},{'a' if i % 3 else ''},c{i % 40}"
                            for i in range(600)]
    (folder / "part.csv").write_text("\n".join(lines) + "\n")
    written = run_example_gen(fast.Executor, folder, tmp_path / "out")
    expected = {split: {} for split in ("train", "eval")}
    for split in expected:
        for example in _read(written.uri, split):
            value = example.features.feature["y"].bytes_list.value[0].decode()
            expected[split][value] = expected[split].get(value, 0) + 1
    splits = (("train", 2), ("eval", 1))  # run_example_gen's, not kubetfx's DEFAULT_SPLITS
    assert fast.label_counts_per_split([folder / "part.csv"], "y", rarer_than=1000, splits=splits) == expected
    # Only the classes asked about (all of them have 15 rows here).
    assert fast.label_counts_per_split([folder / "part.csv"], "y", rarer_than=15, splits=splits) == {
        "train": {}, "eval": {}}


def _growing_csv(folder, rows: int):
    folder.mkdir()
    path = folder / "live.csv"
    path.write_text("x,y\n" + "".join(f"{i},{'a' if i % 2 else 'b'}\n" for i in range(rows)))
    return path


def test_what_was_read_is_recorded_bytes_and_rows(tmp_path):
    path = _growing_csv(tmp_path / "csv", 1000)
    examples = run_example_gen(fast.Executor, path.parent, tmp_path / "out")
    assert examples.get_int_custom_property(fast.ROWS_READ) == 1000
    assert examples.get_int_custom_property(fast.BYTES_READ) == path.stat().st_size


def test_rows_appended_while_example_gen_reads_are_refused(tmp_path):
    """A writer still appending: before, the run recorded the size from before the append
    and trained on whatever part it had read."""
    import threading

    path = _growing_csv(tmp_path / "csv", 60_000)
    stop = threading.Event()

    def append():
        with open(path, "a") as f:
            while not stop.is_set():
                f.write("1,a\n")
                f.flush()
                stop.wait(0.002)

    writer = threading.Thread(target=append)
    writer.start()
    try:
        with pytest.raises(fast.InputChangedError) as raised:
            run_example_gen(fast.Executor, path.parent, tmp_path / "out")
    finally:
        stop.set()
        writer.join(timeout=10)
    message = str(raised.value)
    assert message.startswith(f"{path} changed while ExampleGen read it (") and "rows read)" in message
    assert "\n" not in message


def test_a_file_changed_after_the_driver_looked_is_refused(tmp_path):
    from tfx.utils import io_utils

    path = _growing_csv(tmp_path / "csv", 100)
    fingerprint = io_utils.generate_fingerprint("single_split", str(path.parent / "*.csv"))
    with open(path, "a") as f:
        f.write("7,a\n")
    with pytest.raises(fast.InputChangedError, match=r"the input changed after the run looked at it \(\d+ -> \d+ bytes"):
        run_example_gen(fast.Executor, path.parent, tmp_path / "out", input_fingerprint=fingerprint)
