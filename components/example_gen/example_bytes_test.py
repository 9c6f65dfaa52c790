"""example_bytes against protobuf itself: the bytes of every row must be what
`tf.train.Example.SerializeToString(deterministic=True)` gives for the same values, since
TFX assigns splits by hashing exactly that form.

Each case runs in both forms of a missing value: left out of the Example (what kubetfx
writes: one representation of a missing value, the same as a request that leaves the field
out) and CsvExampleGen's empty list (what the split of a row with a gap is hashed from, so
rows land in the splits CsvExampleGen gives them)."""
import math

import numpy as np
import pyarrow as pa
import pytest
import tensorflow as tf

from kubetfx.components.example_gen import example_bytes
from kubetfx.components.example_gen.example_bytes import FLOAT, INT, STRING, UNKNOWN

_ARROW_TYPE = {INT: pa.int64(), FLOAT: pa.float32(), STRING: pa.binary(), UNKNOWN: pa.binary()}


def _protobuf(columns: dict, kinds: dict, rows: int, missing_as_empty_list: bool) -> list:
    records = []
    for row in range(rows):
        example = tf.train.Example()
        example.features.SetInParent()
        for name, values in columns.items():
            value = values[row]
            if value is None and not missing_as_empty_list:
                continue  # a missing value: no feature at all
            feature = example.features.feature[name]
            if kinds[name] == UNKNOWN:
                feature.SetInParent()
            elif kinds[name] == INT:
                feature.int64_list.SetInParent()
                feature.int64_list.value.extend([] if value is None else [value])
            elif kinds[name] == FLOAT:
                feature.float_list.SetInParent()
                feature.float_list.value.extend([] if value is None else [value])
            else:
                feature.bytes_list.SetInParent()
                feature.bytes_list.value.extend([] if value is None else [value])
        records.append(example.SerializeToString(deterministic=True))
    return records


def _ours(columns: dict, kinds: dict, rows: int, missing_as_empty_list: bool = False) -> list:
    arrays = {n: pa.array(v, _ARROW_TYPE[kinds[n]]) for n, v in columns.items()}
    return example_bytes.as_bytes(example_bytes.serialize(arrays, kinds, rows, missing_as_empty_list))


def _same_bytes(columns: dict, kinds: dict) -> None:
    rows = len(next(iter(columns.values())))
    for missing_as_empty_list in (False, True):
        ours = _ours(columns, kinds, rows, missing_as_empty_list)
        theirs = _protobuf(columns, kinds, rows, missing_as_empty_list)
        assert len(ours) == rows
        for row, (mine, reference) in enumerate(zip(ours, theirs)):
            assert mine == reference, f"row {row} (missing as empty list: {missing_as_empty_list}): {mine!r} != {reference!r}"
            assert tf.train.Example.FromString(mine) == tf.train.Example.FromString(reference)


def test_a_missing_value_is_an_absent_feature():
    """A gap leaves the feature out of the row's Example, as a request that leaves the
    field out: TFDV counts it missing, where an empty list counts as present."""
    records = _ours({"n": [1, None], "s": [None, b"x"], "none": [None, None]},
                    {"n": INT, "s": STRING, "none": UNKNOWN}, 2)
    assert [sorted(tf.train.Example.FromString(r).features.feature) for r in records] == [["n"], ["s"]]


INT64 = np.iinfo(np.int64)
INTS = [0, 1, 127, 128, 300, 16383, 16384, 2**35, INT64.max, -1, -128, INT64.min, None]
FLOATS = [0.0, -0.0, 1.5, -2.25, 3.4e38, 1e-45, math.inf, -math.inf, None, 0.1]
STRINGS = [b"", b"a", "é ü".encode(), b"x" * 127, b"x" * 128, b"y" * 16383, b"y" * 16384,
           b"z" * 300_000, b"\x00\xff", None]


@pytest.mark.parametrize("kind, values", [(INT, INTS), (FLOAT, FLOATS), (STRING, STRINGS)],
                         ids=["int64", "float", "bytes"])
def test_every_value_of_a_kind_and_its_missing_value(kind, values):
    _same_bytes({"value": values}, {"value": kind})


def test_a_column_of_no_kind_and_a_column_with_no_value():
    _same_bytes({"nothing": [None, None], "all_missing": [None, None], "n": [1, 2]},
                {"nothing": UNKNOWN, "all_missing": FLOAT, "n": INT})


def test_keys_are_sorted_as_protobuf_sorts_them():
    names = ["b", "B", "a_b", "ab", "a", "é", "z" * 200, "A1", "_"]
    _same_bytes({n: [i, None] for i, n in enumerate(names)}, {n: INT for n in names})


def test_mixed_columns_with_random_missing_values():
    generator = np.random.default_rng(3)
    rows = 3000
    def with_gaps(values):
        return [None if gap else v for v, gap in zip(values, generator.random(rows) < 0.2)]
    columns = {
        "species": with_gaps(generator.choice([b"Adelie", b"Gentoo", "Chinstrap é".encode()], rows).tolist()),
        "count": with_gaps(generator.integers(-2**40, 2**40, rows).tolist()),
        "mass": with_gaps(generator.normal(4000, 800, rows).astype(np.float32).tolist()),
        "note": with_gaps([b"n" * int(k) for k in generator.integers(0, 400, rows)]),
        "empty": [None] * rows,
    }
    kinds = {"species": STRING, "count": INT, "mass": FLOAT, "note": STRING, "empty": UNKNOWN}
    _same_bytes(columns, kinds)


def test_a_batch_of_no_rows():
    assert _ours({"a": [], "b": []}, {"a": INT, "b": STRING}, 0) == []


def test_varint_sizes_at_each_boundary():
    values = [0, 127, 128, 2**14 - 1, 2**14, 2**63 - 1, -1]
    encoded = example_bytes.as_bytes(example_bytes.varints(np.array(values, dtype=np.int64)))
    assert encoded == [example_bytes.varint(v % 2**64) for v in values]
    assert [len(e) for e in encoded] == [1, 1, 2, 2, 3, 9, 10]


def test_the_self_check_finds_bytes_protobuf_would_not_write():
    record = example_bytes.as_bytes(example_bytes.serialize(
        {"a": pa.array([1], pa.int64()), "b": pa.array([b"x"], pa.binary())}, {"a": INT, "b": STRING}, 1))[0]
    assert example_bytes.differs_from_protobuf(record) is None
    example = tf.train.Example.FromString(record)
    swapped = b"".join(  # the same Example, its two map entries in the other order
        tf.train.Example(features=tf.train.Features(feature={n: example.features.feature[n]})).SerializeToString()
        for n in ("b", "a"))
    assert tf.train.Example.FromString(swapped) == example
    assert "first difference at byte" in example_bytes.differs_from_protobuf(swapped)
    assert "cannot parse" in example_bytes.differs_from_protobuf(b"\x0a\xff")


def test_a_run_whose_first_record_differs_from_protobuf_runs_the_stock_executor(tmp_path, monkeypatch, caplog):
    """Simulated: a protobuf that orders map keys otherwise than example_bytes believes
    (key_order reversed). The run must notice on its first record, say so in one line and
    write the stock executor's examples (the same examples a sound run writes)."""
    import glob
    import os

    from kubetfx.components.example_gen.executor_test import _as_dict, _read, run_example_gen

    from kubetfx.components.example_gen import executor as fast

    folder = tmp_path / "csv"
    folder.mkdir()
    rows = [f"{i % 5},{i * 0.5},name{i % 3}" for i in range(60)]
    (folder / "part.csv").write_text("count,price,name\n" + "\n".join(rows) + "\n")
    expected = run_example_gen(fast.Executor, folder, tmp_path / "expected")
    order = example_bytes.key_order
    monkeypatch.setattr(example_bytes, "key_order", lambda names: order(names)[::-1])
    caplog.clear()
    with caplog.at_level("INFO"), caplog.at_level("INFO", logger="absl"):
        artifact = run_example_gen(fast.Executor, folder, tmp_path / "out")
    lines = [r.getMessage() for r in caplog.records]
    checks = [line for line in lines if "not protobuf's own bytes" in line]
    assert len(checks) == 1 and "the stock executor runs" in checks[0], checks
    assert not any(line.startswith("ExampleGen: ") and "rows/s" in line for line in lines)  # not the fast path
    for split in ("train", "eval"):
        files = glob.glob(os.path.join(artifact.uri, f"Split-{split}", "*.gz"))
        records = [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]
        assert records and all(tf.train.Example.FromString(r).features.feature for r in records)
    # The same examples over both splits: which split a row lands in is the stock
    # executor's hash of its serialized bytes, and protobuf 3 (the Python 3.10 lock) orders
    # map keys otherwise than protobuf 4, so per split the rows may differ there (and so
    # may the order a parsed Example's features come in: compared with sorted names).
    def every(uri):
        return sorted(repr(sorted(_as_dict(e).items())) for split in ("train", "eval") for e in _read(uri, split))
    assert every(artifact.uri) == every(expected.uri)
