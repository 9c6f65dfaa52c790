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
    assert roles == {"identifiers": ["id"], "datetimes": ["when"], "text": []}
    assert column_roles.notes(roles)[0].startswith("column 'id' is an identifier")


def test_too_few_values_make_no_identifier_but_dates_are_dates(tmp_path):
    rows = [f"u{i},2024-03-01,oslo,1,a" for i in range(10)]
    assert column_roles.infer([_write(tmp_path / "d.csv", rows)], "label") == {
        "identifiers": [], "datetimes": ["when"], "text": []}


def _table(tmp_path, header, rows):
    path = tmp_path / "t.csv"
    path.write_text(",".join(header) + "\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
    return column_roles.infer([path], "label")


def test_integer_identifiers_and_counters_are_identifiers_by_their_values(tmp_path):
    import random
    rng = random.Random(3)
    ids = rng.sample(range(10_000, 99_999), 300)
    rows = [(ids[i],                    # customer id: distinct, in no order
             i // 2,                    # line number: a counter with repeats
             rng.randint(18, 80),       # age: an integer measurement
             int(rng.uniform(60, 3600)),  # seconds: many values, but repeats
             f"{rng.gauss(50, 9):.4f}",  # a float distinct per row: a measurement
             18 + i // 10,              # sorted by age (a measurement that happens to be sorted)
             "ab"[i % 2]) for i in range(300)]
    roles = _table(tmp_path, ["customer", "line", "age", "seconds", "spend", "sorted_age", "label"], rows)
    assert roles["identifiers"] == ["customer", "line"]
    notes = column_roles.notes(roles)
    assert notes[0].startswith("column 'customer' is an identifier") and "not used as a feature" in notes[0]


def test_free_text_is_text_not_an_identifier_and_short_labels_are_categories(tmp_path):
    words = ["late", "delivery", "great", "service", "box", "damaged", "would", "order", "again", "slow"]
    rows = [(" ".join(words[(i * k) % 10] for k in range(1, 6 + i % 3)) + f" #{i}", ["Credit Card", "Cash"][i % 2],
             "ab"[i % 2]) for i in range(100)]
    roles = _table(tmp_path, ["comment", "payment", "label"], rows)
    assert roles == {"identifiers": [], "datetimes": [], "text": ["comment"]}
    assert "free text" in column_roles.notes(roles)[0]
    assert column_roles.left_out(roles) == {"comment"}


def test_the_config_overrides_a_columns_role():
    inferred = {"identifiers": ["customer", "row"], "datetimes": ["when"], "text": []}
    configured = {"features": ["row"], "identifiers": ["store"], "text": ["when"]}
    assert column_roles.resolve(inferred, configured) == {
        "identifiers": ["customer", "store"], "datetimes": [], "text": ["when"]}
    assert column_roles.resolve(inferred, None) == inferred


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
