"""What `kubetfx run` does with other data and when a gate says no: real runs, real stores."""
from __future__ import annotations

import os
import re

from pathlib import Path

import pytest

import taxi_like
from conftest import REPO, executions_by_stage

import bad_inputs
import csv_dialects
from kubetfx.pipelines import cli

EMBEDDED = REPO / "pipelines" / "data" / "penguins" / "penguins.csv"


def _served_versions(home, name):
    path = home / "serving" / name
    return sorted(os.listdir(path)) if path.exists() else []


@pytest.mark.slow
@pytest.mark.serving
def test_any_csv_with_strings_missing_values_and_a_regression_label(tmp_path, run_kubetfx):
    data = taxi_like.write(tmp_path / "trips.csv")
    result = run_kubetfx("run", "--home", tmp_path / "home", "--data", data, "--label", "fare")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "regression" in result.stdout and "mean_absolute_error" in result.stdout
    # Another dataset is another pipeline, named after the file.
    assert len(_served_versions(tmp_path / "home", "kubetfx-trips")) == 1

    import tensorflow as tf
    import tensorflow_transform as tft
    root = tmp_path / "home" / "pipelines" / "kubetfx-trips"
    graph = tft.TFTransformOutput(str(next((root / "Transform" / "transform_graph").iterdir())))
    assert graph.transformed_feature_spec()["company"].dtype == tf.int64  # string -> vocabulary id
    model = tf.saved_model.load(str(next((tmp_path / "home" / "serving" / "kubetfx-trips").iterdir())))
    example = tf.train.Example()
    example.features.feature["trip_miles"].float_list.value.append(10.0)
    example.features.feature["trip_seconds"].int64_list.value.append(1800)
    example.features.feature["payment_type"].bytes_list.value.append(b"Cash")
    # pickup_hour and company missing: the transform fills them in.
    fare = model.signatures["serving_default"](examples=tf.constant([example.SerializeToString()]))["predictions"]
    assert 10.0 < float(fare[0][0]) < 45.0  # the true fare is about 30

    # The next data is checked against the schema of the model now served: a new company
    # it never saw is rejected before any training.
    data.write_text(data.read_text().replace("Sun Taxi", "Night Owl Cabs"))
    result = run_kubetfx("run", "--home", tmp_path / "home", "--data", data, "--label", "fare")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "column 'company'" in result.stderr and "Night Owl Cabs" in result.stderr
    assert len(_served_versions(tmp_path / "home", "kubetfx-trips")) == 1


@pytest.mark.slow
@pytest.mark.serving
def test_a_model_below_the_threshold_is_not_pushed(tmp_path, run_kubetfx):
    home = tmp_path / "home"
    result = run_kubetfx("run", "--home", home, "--eval-threshold", "1.01", "--train-steps", "20")
    assert result.returncode == 4, result.stdout + result.stderr
    assert "NOT blessed" in result.stdout and "failed: sparse_categorical_accuracy" in result.stdout
    assert "NOT pushed" in result.stderr
    assert _served_versions(home, "kubetfx-penguin") == []
    assert executions_by_stage(home / "metadata" / "kubetfx-penguin.sqlite")["Pusher"] == ["COMPLETE"]


@pytest.mark.slow
def test_a_model_the_server_cannot_serve_is_not_pushed(tmp_path, run_kubetfx):
    # The model server fails to start: InfraValidator must not bless, Pusher must not push.
    home = tmp_path / "home"
    result = run_kubetfx("run", "--home", home, "--train-steps", "20", env={"KUBETFX_SERVING_PYTHON": "/bin/false"})
    assert result.returncode == 4, result.stdout + result.stderr
    assert "infra validation FAILED" in result.stdout and "BLESSED" in result.stdout
    assert _served_versions(home, "kubetfx-penguin") == []


@pytest.mark.slow
def test_data_breaking_the_schema_stops_before_transform(tmp_path, run_kubetfx):
    data = tmp_path / "penguins.csv"
    data.write_text(EMBEDDED.read_text().replace("\nAdelie,Torgersen,", "\nEmperor,Torgersen,"))
    home = tmp_path / "home"
    result = run_kubetfx("run", "--home", home, "--data", data, "--label", "species", "--schema-file",
                         REPO / "pipelines" / "schemas" / "penguins.schema.pbtxt")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "column 'species'" in result.stderr and "Emperor" in result.stderr
    assert "Full anomalies:" in result.stderr and "Traceback" not in result.stderr
    kept = result.stderr.split("Full anomalies: ", 1)[1].split()[0]
    assert list(Path(kept).glob("Split-*/SchemaDiff.pb")), kept  # still there after the run
    states = executions_by_stage(home / "metadata" / "kubetfx-penguins.sqlite")
    assert states["ExampleValidator"] == ["FAILED"]
    assert "Transform" not in states and "Trainer" not in states and "Pusher" not in states
    assert _served_versions(home, "kubetfx-penguins") == []


@pytest.mark.parametrize("args, message", [
    (["--data", "/nonexistent/trips.csv", "--label", "fare"], "does not exist"),
    (["--data", str(EMBEDDED), "--label", "no_such_column"], "label column 'no_such_column'"),
    (["--data", str(EMBEDDED)], "--data needs --label"),
    (["--name", "Not A Name"], "pipeline name"),
    (["--module-file", "/nonexistent/module.py"], "--module-file /nonexistent/module.py does not exist"),
    (["--schema-file", "/nonexistent/schema.pbtxt"], "--schema-file /nonexistent/schema.pbtxt does not exist"),
    (["--train-steps", "many"], "argument --train-steps: invalid int value: 'many'"),
])
def test_user_errors_get_one_line_and_exit_2(tmp_path, run_kubetfx, args, message):
    result = run_kubetfx("run", "--home", tmp_path / "home", *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "home" / "pipelines").exists()  # nothing started


# Paths that cannot be written, even by root (CI runs as root, which permission bits do
# not stop): a file where a folder must be, a folder where a file must be.
@pytest.mark.parametrize("command, message", [
    (["run", "--home", "{file}/home"], "cannot write to the home (--home or KUBETFX_HOME) {file}/home: {file} is a file"),
    (["compile", "--output", "{file}/spec.yaml"], "cannot write to the folder of the --output file {file}: {file} is a file"),
    (["compile", "--output", "{dir}"], "the --output file {dir} is a folder"),
])
def test_unwritable_paths_get_one_line_and_exit_2(tmp_path, capsys, command, message):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    fill = {"file": blocker, "dir": tmp_path}
    assert cli.main([arg.format(**fill) for arg in command]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"kubetfx: error: {message.format(**fill)}"), err
    assert err.count("\n") == 1 and "Traceback" not in err, err


def test_kubetfx_home_from_the_environment_is_checked_too(tmp_path, run_kubetfx):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = run_kubetfx("run", env={"KUBETFX_HOME": str(blocker / "home")})
    assert result.returncode == 2 and "cannot write to the home" in result.stderr, result.stderr


@pytest.mark.slow
@pytest.mark.serving
@pytest.mark.parametrize("dialect", ["R write.csv (defaults)", "Excel CSV UTF-8 (BOM, CRLF, empty rows)"])
def test_csv_as_r_and_excel_write_it_trains_and_pushes(tmp_path, run_kubetfx, dialect):
    data = csv_dialects.write(dialect, tmp_path / "penguins.csv")
    result = run_kubetfx("run", "--home", tmp_path / "home", "--data", data, "--label", "species",
                         "--train-steps", "100")
    assert result.returncode == 0, result.stdout + result.stderr
    line = re.search(r"StatisticsGen .*\d+ rows.*", result.stdout)[0]  # "... eval N rows, test N rows, train N rows"
    rows = dict(re.findall(r"(\w+) (\d+) rows", line))
    assert set(rows) == {"train", "eval", "test"}, line
    assert sum(map(int, rows.values())) == 344  # no blank row, no header read as data
    assert len(_served_versions(tmp_path / "home", "kubetfx-penguins")) == 1


@pytest.mark.parametrize("case, make, label, message", bad_inputs.CASES, ids=[c[0] for c in bad_inputs.CASES])
def test_every_bad_input_is_one_line_and_exit_2(tmp_path, capsys, case, make, label, message):
    data = make(tmp_path / "data")
    code = cli.main(["run", "--home", str(tmp_path / "home"), "--data", str(data), "--label", label])
    err = capsys.readouterr().err
    assert code == 2 and message in err
    assert err.count("\n") == 1 and err.startswith("kubetfx: error: "), err
    assert not (tmp_path / "home").exists()  # nothing started, nothing written


def _loop(path: Path) -> Path:
    path.symlink_to(path.name)  # a link to itself: resolving it raises ELOOP (RuntimeError in 3.11's pathlib)
    return path


@pytest.mark.parametrize("flag, message", [
    ("--data", "loop.csv is a symbolic link to loop.csv, which does not exist"),
    ("--home", "kubetfx: error: the home {path} cannot be resolved (Symlink loop from"),
])
def test_a_symbolic_link_loop_is_one_line_and_exit_2(tmp_path, capsys, flag, message):
    path = _loop(tmp_path / ("loop.csv" if flag == "--data" else "home"))
    argv = ["run", flag, str(path)] + (["--label", "species", "--home", str(tmp_path / "h")] if flag == "--data" else [])
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message.format(path=path) in err and err.count("\n") == 1, err


@pytest.mark.parametrize("content, message", [
    ('{"feature": [{"name": "species"}]}', "is not a text-format TFDV schema: line 1:1 : "),
    ("feature { name: 'species' type: BYTES }\nfeature { nme: 'island' }\n",
     'line 2:11 : Message type "tensorflow.metadata.v0.Feature" has no field named "nme".'),
    ("", "declares no feature"),
    (b"\x08\x96\x01\xff\xfe", "is not text (a binary schema.pb?"),
])
def test_a_schema_file_tfx_cannot_parse_is_refused_before_the_run(tmp_path, capsys, content, message):
    """It failed the first stage instead (ImportSchemaGen: exit 1, after TensorFlow's import)."""
    schema = tmp_path / "schema.pbtxt"
    (schema.write_bytes if isinstance(content, bytes) else schema.write_text)(content)
    assert cli.main(["run", "--home", str(tmp_path / "home"), "--schema-file", str(schema)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"kubetfx: error: --schema-file {schema} ") and message in err, err
    assert err.count("\n") == 1 and not (tmp_path / "home" / "pipelines").exists()


EXITING_MODULE = '''
import sys


def preprocessing_fn(inputs):
    sys.exit(0)  # a script's habit: "done"


def run_fn(fn_args):
    pass
'''


@pytest.mark.slow
def test_a_module_file_calling_sys_exit_fails_its_stage_not_the_run_as_a_success(tmp_path, run_kubetfx):
    """In this process sys.exit(0) in preprocessing_fn ended `kubetfx run` with exit 0: no
    summary, nothing pushed, the stage left RUNNING in ML Metadata."""
    module = tmp_path / "exiting.py"
    module.write_text(EXITING_MODULE)
    home = tmp_path / "home"
    result = run_kubetfx("run", "--home", home, "--module-file", module)
    assert result.returncode == 1, result.stdout + result.stderr
    assert re.search(r"Transform +FAILED after", result.stdout), result.stdout
    assert "kubetfx: Transform failed: StageExitedError: Transform's code called sys.exit(0)" in result.stderr
    assert f"{module}:6 in preprocessing_fn" in result.stderr, result.stderr
    assert executions_by_stage(home / "metadata" / "kubetfx-penguin.sqlite")["Transform"] == ["FAILED"]


@pytest.mark.parametrize("roles, message", [
    ("{datetimes: [species]}", "column_roles.datetimes lists 'species', the label column: the label is what"),
    ("{identifiers: [species, island]}", "column_roles.identifiers lists 'species', the label column"),
    ("{features: [speceis]}", "column_roles names 'speceis', not a column of"),
])
def test_column_roles_naming_the_label_or_no_column_are_one_line_and_exit_2(tmp_path, capsys, roles, message):
    config = tmp_path / "roles.yaml"
    config.write_text(f"column_roles: {roles}\n")
    assert cli.main(["run", "--home", str(tmp_path / "home"), "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kubetfx: error: " + message) and err.count("\n") == 1, err
    assert not (tmp_path / "home" / "pipelines").exists()
