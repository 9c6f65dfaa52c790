"""TFX 1.16's CsvExampleGen executor tests (tfx/components/example_gen/csv_example_gen/
executor_test.py, on TFX's test data shipped in the wheel) against kubetfx's ExampleGen,
then stock CsvExampleGen and ours on the same inputs, example for example and split for
split: the README's "same examples in the same splits" claim, input by input."""
from __future__ import annotations

import glob
import os

import apache_beam as beam
import pytest
import tensorflow as tf
from tfx.components.example_gen.csv_example_gen import executor as stock
from tfx.components.example_gen.csv_example_gen import executor_test as tfx_tests
from tfx.types import standard_component_specs

from kubetfx.components.example_gen import executor as ours
from kubetfx.components.example_gen.executor_test import _read, run_example_gen
from tfx_contract.swap import expected_failure, swap_executor

pytestmark = pytest.mark.slow  # runs Beam pipelines (TFX's tests, stock CsvExampleGen)

TFX_TESTDATA = os.path.join(os.path.dirname(tfx_tests.__file__), "..", "..", "testdata", "external")


class _CsvToExample(beam.PTransform):
    """TFX's `_CsvToExample(exec_properties, split_pattern)` over our reader, so TFX's
    tests of what CSV rows become check our conversion."""

    def __init__(self, exec_properties, split_pattern):
        super().__init__()
        self._pattern = os.path.join(exec_properties[standard_component_specs.INPUT_BASE_KEY], split_pattern)

    def expand(self, pipeline):
        records = list(ours.examples_from_csv(sorted(glob.glob(self._pattern))))
        return pipeline | beam.Create(records) | beam.Map(tf.train.Example.FromString)


class TestCsvExampleGenContract(tfx_tests.ExecutorTest):

    @pytest.fixture(autouse=True)
    def _ours(self, monkeypatch):
        swap_executor(monkeypatch, tfx_tests, Executor=ours.Executor, _CsvToExample=_CsvToExample)

    # A missing value is left out of its row's Example (kubetfx's one representation of a
    # missing value, the one a request that leaves the field out has); CsvExampleGen writes
    # an empty list, which TFDV counts as present.
    testCsvToExample = expected_failure(
        tfx_tests.ExecutorTest, "testCsvToExample",
        "a missing value is left out: the first taxi row, with 5 empty cells, has 13 features, not 18")
    testCsvToExampleWithEmptyColumn = expected_failure(
        tfx_tests.ExecutorTest, "testCsvToExampleWithEmptyColumn",
        "a missing value is left out: the row with an empty C has no feature C, not an empty bytes_list")


# CSV text -> None (same examples, same splits as CsvExampleGen) or why ours differs.
NULL_MARKERS = ("kubetfx reads NA, N/A, NaN, nan, null, NULL and None as missing values (R and pandas write "
                "them); CsvExampleGen keeps them as text (turning a numeric column into strings) or NaN")
HEADER = ("kubetfx parses the header as CSV: quotes and a UTF-8 byte-order mark are not part of column names; "
          "CsvExampleGen splits the first line on commas and keeps them")
_STEP_ABOVE_MIDPOINT = "1.000000059604644775390625000001"  # rounds differently via a double
CASES = {
    "missing values": ("A,B,C\n1,,x\n,2.5,\n3,0.5,y\n", None),
    "a column without any value": ("A,B,C\n1,,x\n2,,y\n3,,\n", None),
    "quoted fields with commas, quotes and line breaks": ('A,B\n1,"a, ""b""\nc"\n2,z\n', None),
    "CRLF line endings and blank lines": ("A,B\r\n1,x\r\n\r\n2,y\r\n\r\n", None),
    "numbers padded with spaces or a plus sign": ("A,B\n 1, +2.5\n+3 ,4\n", None),
    "integers beyond int64": ("A,B\n123456789012345678901234,1\n2,2\n", None),
    "hexadecimal text": ("A,B\n0x10,1\n0x1F,2\n", None),
    "integers and floats mixed": ("A,B\n1,1e3\n2.5,7\n", None),
    "a decimal between two float32 values": (f"A\n{_STEP_ABOVE_MIDPOINT}\n1e50\n0.1\n", None),
    "booleans and leading zeros": ("A,B\nTrue,007\nFalse,010\n", None),
    "inf": ("A\ninf\n-Infinity\n1\n", None),
    "NA marker": ("A,B\nNA,x\n1,y\n", NULL_MARKERS),
    "NaN marker": ("A\nnan\n1.5\n", NULL_MARKERS),
    "quoted header": ('"A","B"\n1,x\n2,y\n', HEADER),
    "byte-order mark": ("\ufeffA,B\n1,x\n2,y\n", HEADER),
    "Python digit grouping": ("A,B\n1_000,x\n2,y\n", "kubetfx reads 1_000 as text; CsvExampleGen parses it with "
                                                      "Python's int(), which takes Python's digit grouping"),
}


def _examples(artifact, split: str) -> list:
    return sorted(e.SerializeToString(deterministic=True) for e in _read(artifact.uri, split))


def _stock_examples(artifact, split: str) -> list:
    """CsvExampleGen's examples with its missing values (empty lists) in kubetfx's
    representation (left out): the one intended difference in what a row becomes."""
    return sorted(ours.without_missing_values(e).SerializeToString(deterministic=True)
                  for e in _read(artifact.uri, split))


def _same_as_csv_example_gen(csv_dir, tmp_path):
    theirs = run_example_gen(stock.Executor, csv_dir, tmp_path / "stock")
    mine = run_example_gen(ours.Executor, csv_dir, tmp_path / "ours")
    for split in ("train", "eval"):
        assert _examples(mine, split) == _stock_examples(theirs, split), split


@pytest.mark.parametrize("case", [
    pytest.param(name, marks=[pytest.mark.xfail(strict=True, raises=AssertionError, reason=why)] if why else [])
    for name, (_, why) in CASES.items()])
def test_same_examples_in_the_same_splits_as_csv_example_gen(case, tmp_path):
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    (csv_dir / "data.csv").write_bytes(CASES[case][0].encode())
    _same_as_csv_example_gen(csv_dir, tmp_path)


def test_same_examples_on_tfx_test_data(tmp_path):
    """TFX's own 15000-row CSV test data (taxi trips: ints, floats, strings, empty fields)."""
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    for path in glob.glob(os.path.join(TFX_TESTDATA, "csv", "*.csv")):
        (csv_dir / os.path.basename(path)).write_bytes(open(path, "rb").read())
    _same_as_csv_example_gen(csv_dir, tmp_path)


def test_a_quoted_line_break_across_a_read_block(tmp_path, monkeypatch):
    monkeypatch.setattr(ours, "BLOCK_BYTES", 1024)
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    rows = "".join(f'{i},"line one\nline two {i}"\n' for i in range(500))
    (csv_dir / "data.csv").write_text("A,B\n" + rows)
    artifact = run_example_gen(ours.Executor, csv_dir, tmp_path / "ours")
    examples = [tf.train.Example.FromString(r) for s in ("train", "eval") for r in _examples(artifact, s)]
    assert len(examples) == 500
    assert {e.features.feature["B"].bytes_list.value[0] for e in examples} == {
        f"line one\nline two {i}".encode() for i in range(500)}
