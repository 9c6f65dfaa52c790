"""Columns the schema-driven Transform must not treat as ordinary strings, found up front
from a sample of the data (issue 15):

- identifiers (nearly every value distinct: row ids, UUIDs, order numbers): a vocabulary of
  them is as large as the table, one-hot encoded into the first layer, and generalises to
  nothing. They are not used as features (the summary says so). Decided by the values, not
  the type: a string or integer column nearly distinct per row, or an integer counter (sorted
  increasing, as row numbers, even with some repeats). An integer id scaled as a number is
  no better: the model learns the order rows were numbered in. Floats are measurements
  whatever their cardinality.
- free text (many distinct values of several words: comments, addresses): neither a
  category nor an identifier; not used as a feature, and the note says "free text".
- date/time strings (ISO 8601: `2024-01-14`, `2024-01-14T00:47:33`, `2024-01-14 00:47`):
  as a vocabulary they are identifiers too; parsed inside the transform graph (so serving
  parses them the same way) into numbers a model can use: seconds since the epoch (trend),
  month, day of week and hour (seasons, weeks, days).

The decision travels in Transform's custom_config, so the compiled spec carries it too.
The config's `column_roles` overrides it per column (`resolve`): a column listed under a
role takes that role, one listed under "features" is an ordinary feature.
"""
from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

SAMPLE_BYTES = 4 << 20          # the first 4 MB of the first file
MIN_VALUES = 50                 # fewer present values than this: decide nothing
ID_DISTINCT_RATIO = 0.9         # distinct / present at or above this: an identifier (strings)
# Integers are often measurements with many values (seconds, cents): only a column with
# hardly a repeat is an identifier (ids repeat only where a row was duplicated)...
INT_ID_DISTINCT_RATIO = 0.99
# ...or a counter: never decreasing down the file, and mostly new values (a measurement
# sorted by chance has few distinct values among 50 and more rows).
COUNTER_DISTINCT_RATIO = 0.5
TEXT_MIN_WORDS = 3              # mean words per value at or above this, and
TEXT_DISTINCT_RATIO = 0.5       # distinct / present at or above this: free text
ROLES = ("identifiers", "datetimes", "text")
FEATURES = "features"           # config key: columns that are ordinary features whatever the values
DATETIME_RATIO = 0.95           # share of present values that must parse as ISO date/time
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")
DATETIME_PARTS = ("epoch_seconds", "month", "weekday", "hour")


def _sample(path) -> pa.Table:
    from kubetfx.components.example_gen.csv_input import NULL_VALUES

    with open(path, "rb") as f:
        head = f.read(SAMPLE_BYTES)
    if len(head) == SAMPLE_BYTES:
        head = head[:head.rfind(b"\n") + 1]  # whole lines only
    return pacsv.read_csv(pa.BufferReader(head), convert_options=pacsv.ConvertOptions(
        null_values=NULL_VALUES, strings_can_be_null=True))


def _integer_role(present) -> str | None:
    distinct = len(pc.unique(present))
    if distinct >= INT_ID_DISTINCT_RATIO * len(present):
        return "identifiers"
    never_decreasing = len(present) < 2 or pc.all(pc.greater_equal(
        present.slice(1), present.slice(0, len(present) - 1))).as_py()
    if never_decreasing and distinct >= COUNTER_DISTINCT_RATIO * len(present):
        return "identifiers"
    return None


def _string_role(present) -> str | None:
    values = present.to_pylist()
    if sum(bool(_ISO.match(v.strip())) for v in values) >= DATETIME_RATIO * len(values):
        return "datetimes"
    distinct = len(pc.unique(present))
    if (distinct >= TEXT_DISTINCT_RATIO * len(values)
            and sum(len(v.split()) for v in values) >= TEXT_MIN_WORDS * len(values)):
        return "text"
    if distinct >= ID_DISTINCT_RATIO * len(values):
        return "identifiers"
    return None


def infer(files: list, label: str, sample: pa.Table | None = None) -> dict:
    """{"identifiers": [...], "datetimes": [...], "text": [...]} among the string and
    integer columns (not the label); `sample`: rows read by another format's reader
    (Parquet, TFRecord) instead of the first CSV file's."""
    table = sample if sample is not None else _sample(files[0])
    roles = {role: [] for role in ROLES}
    for name in table.column_names:
        column = table.column(name)
        if name == label:
            continue
        if pa.types.is_timestamp(column.type) or pa.types.is_date(column.type):
            roles["datetimes"].append(name)  # Arrow read them as dates; the examples hold the text
            continue
        present = column.drop_null().combine_chunks()
        if len(present) < MIN_VALUES:
            continue
        if pa.types.is_integer(column.type):
            role = _integer_role(present)
        elif pa.types.is_string(column.type):
            role = _string_role(present)
        else:
            role = None
        if role:
            roles[role].append(name)
    return roles


def resolve(inferred: dict, configured: dict | None) -> dict:
    """The inferred roles with the config's overrides: a column the config lists under a
    role has that role only; one it lists under "features" has none."""
    configured = configured or {}
    named = {c for columns in configured.values() for c in columns}
    roles = {role: [c for c in inferred.get(role, []) if c not in named] for role in ROLES}
    for role in ROLES:
        roles[role] += [c for c in configured.get(role, []) if c not in roles[role]]
    return roles


def left_out(roles: dict) -> set:
    """Columns that are no model input: identifiers and free text."""
    return set(roles.get("identifiers", [])) | set(roles.get("text", []))


def notes(roles: dict) -> list:
    """One line per column a user should know was treated apart."""
    lines = [f"column {name!r} is an identifier (nearly every value distinct, or a counter): not used as a "
             f"feature (column_roles: {{{FEATURES}: [{name}]}} in the config uses it)"
             for name in roles.get("identifiers", [])]
    lines += [f"column {name!r} is free text (many distinct values of several words): not used as a feature"
              for name in roles.get("text", [])]
    lines += [f"column {name!r} is a date/time: used as {', '.join(DATETIME_PARTS)}"
              for name in roles.get("datetimes", [])]
    return lines


def datetime_parts(x):
    """{part: float [batch] tensor} from ISO 8601 strings (dense [batch], "" when missing);
    a missing or unparsable value gives NaN parts, which Transform treats as missing."""
    import tensorflow as tf

    s = tf.strings.strip(x)
    ok = tf.strings.regex_full_match(s, _ISO.pattern[1:-1])
    padded = tf.where(ok, tf.strings.substr(tf.strings.join([s, "T00:00:00"]), 0, 19), "1970-01-01T00:00:00")

    def number(start, length):
        return tf.strings.to_number(tf.strings.substr(padded, start, length), tf.int64)

    year, month, day = number(0, 4), number(5, 2), number(8, 2)
    hour, minute, second = number(11, 2), number(14, 2), number(17, 2)
    # Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
    y = year - tf.cast(month <= 2, tf.int64)
    era = tf.math.floordiv(y, 400)
    year_of_era = y - era * 400
    day_of_year = (153 * (month + tf.where(month > 2, tf.constant(-3, tf.int64), tf.constant(9, tf.int64))) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    days = era * 146097 + day_of_era - 719468
    parts = {
        "epoch_seconds": days * 86400 + hour * 3600 + minute * 60 + second,
        "month": month,
        "weekday": tf.math.floormod(days + 3, 7),  # 0 = Monday (1970-01-01 was a Thursday)
        "hour": hour,
    }
    nan = tf.fill(tf.shape(s), float("nan"))
    return {k: tf.where(ok, tf.cast(v, tf.float32), nan) for k, v in parts.items()}
