"""Identifier and date/time columns found from a sample, and dates parsed in the graph."""
from __future__ import annotations

import datetime

import numpy as np
import tensorflow as tf

from kubetfx.components.transform import column_roles


def _write(path, rows):
    path.write_text("id,when,city,amount,label\n" + "\n".join(rows) + "\n")
    return path


def test_identifiers_and_datetimes_are_found_and_ordinary_columns_are_not(tmp_path):
    rows = [f"u{i:05d},2024-03-{1 + i % 28:02d}T{i % 24:02d}:15:00,{['oslo', 'rome'][i % 2]},{i % 7},{'ab'[i % 2]}"
            for i in range(200)]
    roles = column_roles.infer([_write(tmp_path / "d.csv", rows)], "label")
    assert roles == {"identifiers": ["id"], "datetimes": ["when"]}
    assert column_roles.notes(roles)[0].startswith("column 'id' looks like an identifier")


def test_too_few_values_make_no_identifier_but_dates_are_dates(tmp_path):
    rows = [f"u{i},2024-03-01,oslo,1,a" for i in range(10)]
    assert column_roles.infer([_write(tmp_path / "d.csv", rows)], "label") == {"identifiers": [], "datetimes": ["when"]}


def test_datetime_parts_match_python_for_dates_times_and_missing_values():
    values = ["2024-02-29T13:45:10", "1999-12-31", " 2026-11-23 07:05 ", "", "not a date"]
    parts = {k: v.numpy() for k, v in column_roles.datetime_parts(tf.constant(values)).items()}
    for i, text in enumerate(values[:3]):
        moment = datetime.datetime.fromisoformat(text.strip()).replace(tzinfo=datetime.timezone.utc)
        assert parts["epoch_seconds"][i] == np.float32(moment.timestamp())
        assert parts["month"][i] == moment.month
        assert parts["weekday"][i] == moment.weekday()
        assert parts["hour"][i] == moment.hour
    assert all(np.isnan(parts[k][3]) and np.isnan(parts[k][4]) for k in column_roles.DATETIME_PARTS)
