"""Every bad input is refused before any stage starts, with a message naming the problem."""
from __future__ import annotations

import pytest

import bad_inputs
from kubetfx.components.example_gen import csv_input, data_format
from kubetfx.pipelines.config import EMBEDDED_DATA


@pytest.mark.parametrize("case, make, label, message", bad_inputs.CASES, ids=[c[0] for c in bad_inputs.CASES])
def test_bad_input_is_refused_with_its_reason(tmp_path, case, make, label, message):
    with pytest.raises(csv_input.InputError) as raised:
        data_format.check(str(make(tmp_path)), label)  # CSV's cases reach csv_input.check
    assert message in str(raised.value)


def test_the_embedded_data_passes():
    csv_input.check(str(EMBEDDED_DATA), "species")


@pytest.mark.parametrize("rows, expected", [
    ("y\na\nb\n", "classification"),
    ("y\n1\n2\n1\n", "classification"),
    ("y\n1.5\n2.25\n", "regression"),
])
def test_task_follows_the_label_type(tmp_path, rows, expected):
    (tmp_path / "d.csv").write_text(rows)
    assert csv_input.infer_task(str(tmp_path / "d.csv"), "y") == expected


def test_a_column_whose_type_changes_after_the_first_block_is_accepted(tmp_path):
    # Arrow infers types from the first block only and fails on a later block that does not
    # fit; the checks read strings and type columns over the whole file, as the executor does.
    path = tmp_path / "d.csv"
    rows = "y,x\n" + "1,2\n2,2\n" * (csv_input.DEFAULT_BLOCK_BYTES // 8 + 500) + "1,many\n"  # two classes
    path.write_text(rows)
    csv_input.check(str(path), "y")
    assert csv_input.infer_column_types([path])["x"] == csv_input.pa.binary()
    assert csv_input.infer_task(str(path), "y") == "classification"


def test_classes_rare_in_train_are_a_warning_with_on_anomalies_warn(tmp_path):
    path = bad_inputs._rare_in_train(tmp_path / "split.csv")
    warning = csv_input.check(str(path), "species", rare_in_train="warn")
    assert "'Chinstrap' (2)" in warning and "\n" not in warning
    assert csv_input.check(str(EMBEDDED_DATA), "species") is None  # every class has 40 rows or more
