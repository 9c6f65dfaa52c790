"""Bad input to `kubetfx monitor`, `serve`, `models` and `rollback`: one line, exit 2."""
from __future__ import annotations

import pytest

from kubetfx.pipelines import cli
from kubetfx.pipelines.monitor import command as monitor_command


@pytest.mark.parametrize("argv, message", [
    (["monitor", "--data", "x.csv"], "serves no model"),
    (["monitor", "--logs", "--retrain"], "--retrain needs --data"),
    (["monitor", "--data", "x.csv", "--threshold", "island"], "must be FEATURE=NUMBER"),
    (["serve"], "has no pushed model"),
    (["rollback", "5"], "is not in the serving directory of pipeline kubetfx-penguin"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, message):
    assert cli.main(argv + ["--home", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_models_of_an_empty_home_says_so(tmp_path, capsys):
    assert cli.main(["models", "--home", str(tmp_path)]) == 0
    assert "no pushed model for pipeline kubetfx-penguin" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["monitor", "--data", "minio://mlpipeline/new", "--serving-dir", "."], "set $KUBETFX_OBJECT_STORE_ENDPOINT"),
    (["monitor", "--data", "minio:///new"], "names no bucket"),
    (["inference-logger", "--upstream", "localhost:8501", "--log-dir", "logs"], "must be an http:// or https://"),
    (["inference-logger", "--upstream", "http://x", "--log-dir", "minio://b/logs"], "set $KUBETFX_OBJECT_STORE_ENDPOINT"),
    (["inference-logger", "--upstream", "http://x", "--log-dir", "logs", "--upstream-timeout", "0"], "must be positive"),
])
def test_cluster_side_bad_input_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.delenv("KUBETFX_OBJECT_STORE_ENDPOINT", raising=False)
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_monitor_of_an_empty_serving_dir_says_where_it_looked(tmp_path, capsys):
    assert cli.main(["monitor", "--data", "x.csv", "--home", str(tmp_path), "--serving-dir", str(tmp_path / "none")]) == 2
    assert f"serves no model in {tmp_path / 'none'}" in capsys.readouterr().err


@pytest.fixture(scope="module")
def training_files(tmp_path_factory):
    """A version's training statistics and schema as the Pusher keeps them: real files of
    the embedded data and the curated schema."""
    import tensorflow_data_validation as tfdv
    from kubetfx.pipelines.config import PipelineConfig
    from kubetfx.pipelines.monitor import new_statistics
    from kubetfx.pipelines.run.inputs import CURATED_SCHEMA

    where = tmp_path_factory.mktemp("training")
    schema = tfdv.load_schema_text(str(CURATED_SCHEMA))
    statistics = new_statistics.statistics(new_statistics.csv_examples(PipelineConfig().data), schema)
    (where / "Split-train").mkdir()
    (where / "Split-train" / "FeatureStats.pb").write_bytes(statistics.SerializeToString())
    (where / "schema.pbtxt").write_text(CURATED_SCHEMA.read_text())
    return where


@pytest.mark.parametrize("damage, words", [
    ("statistics cut short", "is damaged"),   # protobuf's DecodeError traceback, exit 1
    ("statistics empty", "is empty"),         # IndexError traceback in the comparison
    ("schema cut short", "is damaged"),       # text_format.ParseError traceback
])
def test_damaged_training_statistics_or_schema_is_one_line_and_exit_2(training_files, tmp_path, capsys,
                                                                      damage, words):
    import shutil

    from kubetfx.pipelines.monitor import command
    from kubetfx.pipelines.record import pushed_models

    copy = tmp_path / "training"
    shutil.copytree(training_files, copy)
    path = copy / ("schema.pbtxt" if damage.startswith("schema") else "Split-train/FeatureStats.pb")
    data = path.read_bytes()
    path.write_bytes(b"" if damage.endswith("empty") else data[:len(data) // 2])
    served = pushed_models.PushedVersion(version="7", path=str(tmp_path / "7"), data=pushed_models.TrainingData(
        statistics_uri=str(copy), schema_uri=str(copy)))
    with pytest.raises(command.ConfigError, match=words) as raised:
        command._training(served)
    assert str(path) in str(raised.value) and "\n" not in str(raised.value)


@pytest.mark.parametrize("command", [["monitor", "--data", "x.csv"], ["rollout", "status"]])
def test_a_config_without_a_home_leaves_kubetfx_home_in_force_for_every_command(tmp_path, monkeypatch, capsys,
                                                                                 command):
    """`monitor --config FILE` (and `rollout`) used ./.kubetfx when FILE names no home, while
    `run` with the same file wrote to $KUBETFX_HOME: one order for every command taking
    --config (config.home_for): --home, the file's home:, $KUBETFX_HOME, ./.kubetfx."""
    from kubetfx.pipelines.serving import rollout_command

    monkeypatch.setenv("KUBETFX_HOME", str(tmp_path / "env-home"))
    monkeypatch.chdir(tmp_path)
    bare, homed = tmp_path / "bare.yaml", tmp_path / "homed.yaml"
    bare.write_text("name: kubetfx-penguin\n")
    homed.write_text(f"name: kubetfx-penguin\nhome: {tmp_path / 'file-home'}\n")

    def home(*argv):
        args = cli.build_parser().parse_args([*command, *argv])
        config = monitor_command._config(args) if command[0] == "monitor" else rollout_command.config_of(args)
        return config.home_path
    assert home("--config", str(bare)) == tmp_path / "env-home"
    assert home("--config", str(homed)) == tmp_path / "file-home"  # the file's own choice stands
    assert home("--config", str(bare), "--home", str(tmp_path / "flag")) == tmp_path / "flag"
    assert home() == tmp_path / "env-home"
    if command[0] == "monitor":  # and the command itself looks there
        assert cli.main([*command, "--config", str(bare)]) == 2
        assert f"serves no model in {tmp_path / 'env-home' / 'serving' / 'kubetfx-penguin'}" in capsys.readouterr().err


def test_the_trained_on_line_names_partitioned_files_with_their_folders(tmp_path):
    """A partitioned folder's files are shown under their key=value folders (which days the
    model was trained on), not as bare part-00000 names that say nothing."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from kubetfx.pipelines.monitor import command

    for day in ("dt=2026-12-01", "dt=2026-12-02"):
        (tmp_path / day).mkdir()
        pq.write_table(pa.table({"x": [1.0, 2.0]}), tmp_path / day / "part-00000.parquet")
    line = command._trained_on(str(tmp_path))
    assert "dt=2026-12-01/part-00000.parquet" in line and "dt=2026-12-02/part-00000.parquet" in line, line
