"""The run's last line: a new version pushed, or nothing new when the push was already served."""
from __future__ import annotations

from kubetfx.pipelines.record import summary


def _pushed(path):
    return summary.RunSummary(pipeline="p", run_id="r", stages=[], blessed=True, pushed_path=path)


def test_a_version_served_before_the_run_is_nothing_new_and_a_new_one_is_pushed():
    assert _pushed("/h/serving/p/17/").compare_with_served("17").outcome_line() == "nothing new: serving version 17"
    assert _pushed("/h/serving/p/18").compare_with_served("17").outcome_line() == "model pushed to /h/serving/p/18"
    assert not _pushed("/h/serving/p/1").compare_with_served("").nothing_new  # nothing served before
    assert _pushed("/h/serving/p/17").compare_with_served("17").to_dict()["nothing_new"] is True
