"""Every CSV dialect of the corpus passes the checks, gets the task of its label, and is
written by our ExampleGen executor with exactly the table's values: same rows, no
row-number column, missing markers as missing values, quoted commas and line breaks kept."""
from __future__ import annotations

import numpy as np
import pytest

import csv_dialects
from kubetfx.components.example_gen import csv_input
from kubetfx.components.example_gen import executor as fast
from kubetfx.components.example_gen.executor_test import _read, run_example_gen

CASES = [case for case, _ in csv_dialects.DIALECTS]


def _expected_rows() -> list:
    header, rows = csv_dialects.table()
    return sorted(_row_key({name: value for name, value in zip(header, row) if value is not None}) for row in rows)


def _row_key(values: dict) -> tuple:
    """A row as comparable values: numbers as float32 (tf.Example floats; pandas writes 181
    as 181.0), text as UTF-8 bytes."""
    out = []
    for name, value in sorted(values.items()):
        if name in csv_dialects.NUMERIC:
            out.append((name, float(np.float32(value))))
        else:
            out.append((name, value.encode() if isinstance(value, str) else value))
    return tuple(out)


def _example_row(example) -> tuple:
    values = {}
    for name, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        present = list(getattr(feature, kind).value) if kind else []
        if present:
            assert len(present) == 1, (name, present)
            values[name] = present[0]
    return _row_key(values)


@pytest.mark.parametrize("case", CASES)
def test_dialect_trains_with_the_tables_values(tmp_path, case):
    path = csv_dialects.write(case, tmp_path / "data" / "table.csv")
    csv_input.check(str(path), csv_dialects.LABEL)
    assert csv_input.infer_task(str(path), csv_dialects.LABEL) == "classification"

    artifact = run_example_gen(fast.Executor, path.parent, tmp_path / "examples")
    examples = _read(artifact.uri, "train") + _read(artifact.uri, "eval")
    header, _ = csv_dialects.table()
    assert {name for e in examples for name in e.features.feature} == set(header)  # no row-number column
    assert sorted(_example_row(e) for e in examples) == _expected_rows()


def test_the_table_has_what_the_dialects_must_carry():
    header, rows = csv_dialects.table()
    comments = [row[-1] for row in rows if row[-1]]
    assert set(comments) == set(csv_dialects.COMMENTS)  # commas, quotes, a line break, non-ASCII
    assert any(None in row[2:7] for row in rows)  # missing numbers
    assert len(rows) == 344


def test_a_quoted_line_break_across_arrows_block_boundary_is_read(tmp_path):
    # Arrow splits files into blocks; without newlines_in_values a quoted line break that
    # straddles a block boundary is a parse error. Small blocks put one on a boundary.
    path = tmp_path / "t.csv"
    path.write_text("y,text\n" + "".join(f'a,"line {i}\nand more"\n' for i in range(200)))
    rows = sum(batch.num_rows for batch in csv_input.open_rows(path, block_size=64))
    assert rows == 200
