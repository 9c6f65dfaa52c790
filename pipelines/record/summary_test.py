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


def _store_with_runs(path, runs):
    """A real SQLite ML Metadata store as TFX leaves one: a pipeline context, one context per
    run and per node, and each run's executions; runs = [(run id, [(node, state)])]."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    from kubetfx.pipelines.record import mlmd

    store = mlmd.open_store(path, writable=True)
    type_ids = {name: store.put_context_type(pb.ContextType(name=name)) for name in ("pipeline", "pipeline_run", "node")}

    def context(type_name, name):
        [context_id] = store.put_contexts([pb.Context(type_id=type_ids[type_name], name=name)])
        return store.get_contexts_by_id([context_id])[0]

    pipeline, nodes = context("pipeline", "p"), {}
    for run_id, stages in runs:
        run = context("pipeline_run", run_id)
        for node, state in stages:
            if node not in nodes:
                nodes[node] = context("node", f"p.{node}")
            type_id = store.put_execution_type(pb.ExecutionType(name=f"tfx.{node}"))
            store.put_execution(pb.Execution(type_id=type_id, last_known_state=state), [], [pipeline, run, nodes[node]])
    return store


def test_a_stage_left_running_is_interrupted_in_the_run_summary_and_json_as_in_the_report(tmp_path):
    """A SIGKILL or OOM kill leaves the stage RUNNING in ML Metadata: `kubetfx report` said
    interrupted when no process holds the home, while `kubetfx run`'s table and --json said
    running. Both now read the state through summary.stage_state."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    from kubetfx.pipelines.report import run_record

    path = tmp_path / "p.sqlite"
    _store_with_runs(path, [("r1", [("CsvExampleGen", pb.Execution.COMPLETE), ("Trainer", pb.Execution.RUNNING)])])
    killed = summary.summarize(str(path), "p", "r1", live=False)
    assert [(s.stage, s.state) for s in killed.stages] == [("CsvExampleGen", "complete"), ("Trainer", "interrupted")]
    assert [s["state"] for s in killed.to_dict()["stages"]] == ["complete", "interrupted"]  # run --json
    assert "  Trainer        interrupted " in killed.table(), killed.table()
    assert [s.state for s in run_record.read(str(path), "p", "r1", live=False).stages] == ["complete", "interrupted"]
    # While a run holds the home, running is running, in both views.
    assert [s.state for s in summary.summarize(str(path), "p", "r1", live=True).stages] == ["complete", "running"]
    assert [s.state for s in run_record.read(str(path), "p", "r1", live=True).stages] == ["complete", "running"]


def test_the_latest_run_is_the_last_recorded_even_when_the_clock_stepped_back(tmp_path):
    """ML Metadata stamps create times from the clock; after it steps back (NTP, a VM restored
    from a snapshot) the newer run has the earlier time, and `run`'s summary, `report` and
    its run list took the older run for the latest. Made here as such a store is: the second
    run's create times written an hour before the first's."""
    import sqlite3

    from ml_metadata.proto import metadata_store_pb2 as pb

    from kubetfx.pipelines.record import mlmd
    from kubetfx.pipelines.report import run_record

    path = tmp_path / "p.sqlite"
    done = pb.Execution.COMPLETE
    store = _store_with_runs(path, [("before", [("CsvExampleGen", done), ("Trainer", done)]),
                                    ("after", [("CsvExampleGen", done), ("Trainer", done)])])
    del store  # closes the store before SQLite is written directly
    with sqlite3.connect(path) as db:
        (first,) = db.execute("SELECT create_time_since_epoch FROM Context WHERE name = 'before'").fetchone()
        db.execute("UPDATE Context SET create_time_since_epoch = ? WHERE name = 'after'", (first - 3_600_000,))
        # Its stages too, the later one stamped earlier (the clock stepped back between them).
        example_gen, trainer = [row[0] for row in db.execute(
            "SELECT execution_id FROM Association JOIN Context ON Context.id = context_id "
            "WHERE Context.name = 'after' ORDER BY execution_id")]
        db.execute("UPDATE Execution SET create_time_since_epoch = ? WHERE id = ?", (first - 3_000_000, example_gen))
        db.execute("UPDATE Execution SET create_time_since_epoch = ? WHERE id = ?", (first - 3_600_000, trainer))
    db.close()
    assert summary.latest_run_id(mlmd.open_store(path), "p") == "after"
    assert run_record.run_ids(str(path), "p") == ["after", "before"]
    assert run_record.read(str(path), "p", live=False).run_id == "after"
    assert [s.stage for s in summary.summarize(str(path), "p", "after", live=False).stages] == ["CsvExampleGen", "Trainer"]
