"""The serving directory as TF Serving reads it, and the record's edge cases."""
from __future__ import annotations

from kubetfx.pipelines.record import pushed_models


def _version(base, name):
    (base / name).mkdir(parents=True)
    (base / name / "saved_model.pb").write_bytes(b"x")


def test_only_integer_directories_are_versions_and_the_highest_serves(tmp_path):
    for name in ("9", "10", ".staging-11-123"):
        _version(tmp_path, name)
    (tmp_path / "12").write_text("a file, not a version")
    (tmp_path / pushed_models.HISTORY_FILE).write_text("")
    assert pushed_models.serving_versions(tmp_path) == ["9", "10"]  # 10 > 9 as integers, not as text
    assert pushed_models.served_version(tmp_path) == "10"


def test_without_metadata_the_versions_are_listed_unrecorded(tmp_path):
    _version(tmp_path / "serving", "5")
    records = pushed_models.pushed_versions(tmp_path / "none.sqlite", "p", tmp_path / "serving")
    assert [(r.version, r.serving, r.recorded) for r in records] == [("5", True, False)]


def test_the_rollback_history_survives_a_torn_last_line(tmp_path):
    for name in ("5", "6"):
        _version(tmp_path, name)
    (tmp_path / pushed_models.HISTORY_FILE).write_text('{"version": "6", "rollback_of": "4"}\n{"version": "7", "rol')
    records = pushed_models.pushed_versions(tmp_path / "none.sqlite", "p", tmp_path)
    assert [r.rollback_of for r in records] == [None, "4"]


def test_without_metadata_a_version_is_read_from_the_summary_beside_it(tmp_path):
    from kubetfx.components.pusher import training_summary

    _version(tmp_path, "1795447156")  # TFX's version number: the Unix time of the push
    summary = tmp_path / "1795447156" / training_summary.DIRECTORY
    (summary / "statistics" / "Split-train").mkdir(parents=True)
    (summary / training_summary.SCHEMA_FILE).write_text("feature {}")
    (summary / training_summary.STATISTICS_FILE).write_bytes(b"")
    (summary / training_summary.RECORD_FILE).write_text(
        '{"label": "species", "task": "classification", "span": 3, "blessed": true, "infra_blessed": true,'
        ' "statistics_uri": "minio://mlpipeline/v2/artifacts/run/statistics_gen/statistics"}')
    (record,) = pushed_models.pushed_versions(tmp_path / "none.sqlite", "p", tmp_path)
    assert (record.recorded, record.summary, record.blessed, record.infra_blessed) == (False, True, True, True)
    assert (record.data.label, record.data.task, record.data.span) == ("species", "classification", 3)
    assert record.pushed_at == "2026-11-23T15:19:16+00:00"
    assert record.data.statistics_uri == str(summary / "statistics")  # the copy, not the pod's artifact
    assert "minio://mlpipeline/v2/artifacts/run/statistics_gen/statistics" in record.data.input_base
