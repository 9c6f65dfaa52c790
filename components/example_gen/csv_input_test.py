"""Every bad input is refused before any stage starts, with a message naming the problem."""
from __future__ import annotations

import pytest

from kubetfx.components.example_gen import bad_inputs, csv_input
from kubetfx.pipelines.config import EMBEDDED_DATA


@pytest.mark.parametrize("case, make, label, message", bad_inputs.CASES, ids=[c[0] for c in bad_inputs.CASES])
def test_bad_input_is_refused_with_its_reason(tmp_path, case, make, label, message):
    with pytest.raises(csv_input.InputError) as raised:
        csv_input.check(str(make(tmp_path)), label)
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
