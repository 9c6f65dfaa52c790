"""`kubetfx feedback`: the join of later outcomes with a real inference log (TFRecord shards
written by InferenceLog): idempotent, duplicates, conflicts, unknown ids and unparsable
labels counted, the --key join on a logged feature."""
import json
import sqlite3

import pytest

from rollout_traffic import labels, write_log
from kubetfx.pipelines import cli
from kubetfx.pipelines.config import ConfigError, PipelineConfig
from kubetfx.pipelines.serving import feedback, inference_log


@pytest.fixture
def home(tmp_path):
    config = PipelineConfig(home=str(tmp_path / "home"), task="classification").validate()
    rows = [(f"r{i}", 1, "stable", "yes" if i % 2 else "no", 100 + i % 5, 1_700_000_000 + i) for i in range(20)]
    write_log(inference_log.log_dir(config), rows)
    return config


def joined(config):
    with sqlite3.connect(feedback.db_path(config)) as db:
        return sorted(db.execute(feedback.LABELLED).fetchall())


def test_the_same_file_twice_gives_the_same_result(home, tmp_path):
    path = labels(tmp_path / "l.csv", [f"r{i},{'yes' if i < 10 else 'no'}" for i in range(20)])
    first = feedback.feed(home, path)
    assert (first.rows, first.new, first.duplicates, first.unknown, first.joined) == (20, 20, 0, 0, 20)
    rows = joined(home)
    assert sum(predicted == label for *_, predicted, _, label in rows) == 10
    again = feedback.feed(home, path)
    assert (again.new, again.duplicates, again.conflicts, again.joined) == (0, 20, 0, 20)
    assert joined(home) == rows


def test_duplicates_conflicts_unknown_ids_and_unparsable_labels_are_counted(home, tmp_path):
    path = labels(tmp_path / "l.csv", ["r1,yes", "r1,yes", "r2,no", "r2,yes", "nobody,yes", "r3,", ",yes",
                                       "r4," + "x" * 2000])
    counts = feedback.feed(home, path)
    assert (counts.rows, counts.new, counts.duplicates, counts.conflicts, counts.unparsable, counts.unknown) == \
        (8, 3, 1, 1, 3, 1)
    assert {(r[0], r[-1]) for r in joined(home)} == {("r1", "yes"), ("r2", "no")}  # the first label kept


def test_regression_labels_must_be_finite_numbers(tmp_path):
    assert feedback.parse_label(" 2.5 ", "regression") == "2.5"
    assert feedback.parse_label("nan", "regression") is None
    assert feedback.parse_label("abc", "regression") is None
    assert feedback.parse_label("abc", "classification") == "abc"


def test_key_column_joins_on_a_logged_feature(home, tmp_path):
    path = labels(tmp_path / "k.csv", ["100,yes", "101,no", "999,no"], header="customer_id,label")
    counts = feedback.feed(home, path, key="customer_id")
    assert (counts.new, counts.unknown) == (3, 1)
    assert counts.joined == 8  # customers 100 and 101: 4 requests each
    assert {r[-1] for r in joined(home) if r[0] == "r0"} == {"yes"}


def test_missing_columns_and_missing_files_are_one_line(home, tmp_path):
    with pytest.raises(ConfigError, match="no column request_id"):
        feedback.feed(home, labels(tmp_path / "x.csv", ["1,2"], header="id,label"))
    with pytest.raises(ConfigError, match="is not a file"):
        feedback.feed(home, tmp_path / "absent.csv")


def test_the_command_prints_the_counts_as_json(home, tmp_path, capsys):
    path = labels(tmp_path / "l.csv", ["r1,yes", "r1,yes", "zzz,no"])
    code = cli.main(["feedback", str(path), "--home", home.home, "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and (out["new"], out["duplicates"], out["unknown"], out["predictions_read"]) == (2, 1, 1, 20)
    assert cli.main(["feedback", str(tmp_path / "none.csv"), "--home", home.home]) == 2


def test_a_failed_model_call_reads_back_as_an_error_with_its_latency():
    """What the rollout's error and latency budgets read: the status and time the model
    server logs (a failed call: no prediction), joined like any logged request."""
    import time

    from kubetfx.components.serving.model_server import InferenceRecord

    failed = InferenceRecord("m", 3, time.time(), "serving_default", [{"x": 1.0}], {}, "req-1", "candidate",
                             latency_ms=12.5, status_code=500)
    (serialized,) = inference_log.to_examples(failed, None)
    request_id, version, track, predicted, _, latency, status, _ = feedback.prediction_row(serialized, None)
    assert (request_id, version, track, predicted, status) == ("req-1", 3, "candidate", None, 500)
    assert latency == pytest.approx(12.5)


def test_a_label_file_saved_by_a_spreadsheet_with_a_byte_order_mark_reads(home, tmp_path):
    """Excel's "CSV UTF-8" starts the file with a byte-order mark; before, the first column
    was read as '\\ufeffrequest_id' and the file refused with "has no column request_id"."""
    path = tmp_path / "excel.csv"
    path.write_bytes("request_id,label\r\nr1,yes\r\nr2,no\r\n".encode("utf-8-sig"))
    counts = feedback.feed(home, path)
    assert (counts.rows, counts.new, counts.unknown) == (2, 2, 0)


def test_a_request_id_label_joins_a_one_instance_request_only(tmp_path):
    """A request of three penguins answered three predictions under one X-Request-Id; a
    label fed for that id was joined to all three, so one outcome counted as three labelled
    requests towards the rollout's min_samples (and was the wrong label for two of them).
    It joins none now and is counted; --key joins per instance."""
    import numpy as np

    from kubetfx.components.serving.model_server import InferenceRecord
    from rollout_traffic import example

    config = PipelineConfig(home=str(tmp_path / "home"), task="classification").validate()
    log = inference_log.InferenceLog(inference_log.log_dir(config), features=lambda version: {"customer_id"})
    for request_id, customers in (("batch", [7, 8, 9]), ("single", [10])):
        n = len(customers)
        log(InferenceRecord("m", 1, 1.7e9, "serving_default", [example(c) for c in customers],
                            {"classes": np.array([b"yes"] * n), "probabilities": np.full((n, 2), 0.5)}, request_id,
                            "stable"))
    log.close()
    counts = feedback.feed(config, labels(tmp_path / "l.csv", ["batch,yes", "single,yes"]))
    assert (counts.new, counts.unknown, counts.ambiguous, counts.joined) == (2, 0, 1, 1)
    assert [r[0] for r in joined(config)] == ["single"]
    assert "1 for requests of several instances (not joined: use --key)" in counts.line()
    by_key = feedback.feed(config, labels(tmp_path / "k.csv", ["7,yes", "8,no"], header="customer_id,label"),
                           key="customer_id")
    assert (by_key.ambiguous, by_key.joined) == (0, 3)


def test_a_store_that_is_not_a_database_is_one_line_not_a_traceback(home, tmp_path, capsys):
    """A feedback.sqlite torn or replaced by another file: before, sqlite3.DatabaseError's
    traceback from `kubetfx feedback` and `kubetfx rollout status`."""
    feedback.db_path(home).parent.mkdir(parents=True, exist_ok=True)
    feedback.db_path(home).write_bytes(b"request_id,label\n" * 100)
    path = labels(tmp_path / "l.csv", ["r1,yes"])
    assert cli.main(["feedback", str(path), "--home", home.home]) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot be used (file is not a database): move it aside" in err and len(err.splitlines()) == 1


def test_a_closed_shard_is_read_once_and_a_new_key_reads_it_again(home, tmp_path):
    """Every feedback and every `rollout --auto` re-read the whole log: 40 s (31 CPU s) for
    the default 128 MiB of shards, at each call. A closed shard never changes: it is read
    once, again only for a --key it was not read with; a new shard is read when it comes."""
    path = labels(tmp_path / "l.csv", ["r1,yes"])
    assert feedback.feed(home, path).predictions_read == 20
    assert feedback.feed(home, path).predictions_read == 0
    write_log(inference_log.log_dir(home), [("later", 1, "stable", "yes", 100, 1_700_000_100)])
    assert feedback.feed(home, path).predictions_read == 1
    by_key = feedback.feed(home, labels(tmp_path / "k.csv", ["100,yes"], header="customer_id,label"),
                           key="customer_id")
    assert by_key.predictions_read == 21 and by_key.joined == 1 + 5  # r1, and customer 100's 4 + "later"
    assert feedback.feed(home, tmp_path / "k.csv", key="customer_id").predictions_read == 0
