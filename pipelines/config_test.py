"""PipelineConfig: defaults, YAML, CLI overrides, and the errors a user sees."""
from __future__ import annotations

import pytest

from kubetfx.pipelines import cli
from kubetfx.pipelines.config import ConfigError, PipelineConfig, resolve_home


def test_derived_locations_live_under_home(tmp_path):
    config = PipelineConfig(home=str(tmp_path), name="demo")
    assert config.pipeline_root == tmp_path / "pipelines" / "demo"
    assert config.metadata_path == tmp_path / "metadata" / "demo.sqlite"
    assert config.serving_dir == tmp_path / "serving" / "demo"


def test_home_flag_beats_environment_beats_default(monkeypatch):
    monkeypatch.setenv("KUBETFX_HOME", "/from/env")
    assert resolve_home("/from/flag") == "/from/flag"
    assert resolve_home(None) == "/from/env"
    monkeypatch.delenv("KUBETFX_HOME")
    assert resolve_home(None) == ".kubetfx"


def test_yaml_then_flags(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("name: churn\nlabel: churned\ntrain_steps: 50\n")
    args = cli.build_parser().parse_args(["run", "--config", str(path), "--train-steps", "80"])
    config = cli.config_from_args(args)
    assert (config.name, config.label, config.train_steps) == ("churn", "churned", 80)


def test_unknown_yaml_field_is_named(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("nmae: typo\n")
    with pytest.raises(ConfigError, match="unknown config fields .*nmae"):
        PipelineConfig.from_yaml(str(path))


def test_data_flag_names_the_pipeline_after_the_file():
    args = cli.build_parser().parse_args(["run", "--data", "/x/Taxi Trips.csv", "--label", "fare"])
    assert cli.config_from_args(args).name == "kubetfx-taxi-trips"


@pytest.mark.parametrize("field, value, message", [
    ("name", "Bad_Name", "name: pipeline name 'Bad_Name' must be lower-case"),
    ("task", "ranking", "task: Input should be 'classification' or 'regression'"),
    ("on_anomalies", "ignore", "on_anomalies: Input should be 'fail' or 'warn'"),
    ("train_steps", 0, "train_steps: Input should be greater than 0"),
    ("change_tolerance", -0.1, "change_tolerance: Input should be greater than or equal to 0"),
])
def test_invalid_values_are_refused_with_the_reason(field, value, message):
    with pytest.raises(ConfigError, match=message):
        PipelineConfig(**{field: value}).validate()


# YAML as people write it: what is coerced as the command line would, what is refused.
@pytest.mark.parametrize("line, field, value", [
    ('train_steps: "50"', "train_steps", 50),          # quoted number, as `--train-steps 50`
    ("eval_threshold: '0.7'", "eval_threshold", 0.7),
    ("eval_threshold: 1", "eval_threshold", 1.0),
    ("enable_cache: no", "enable_cache", False),
    ("beam_pipeline_args: [--runner=FlinkRunner]", "beam_pipeline_args", ["--runner=FlinkRunner"]),
    ("task: null", "task", None),
])
def test_yaml_values_are_coerced_as_the_command_line_would(tmp_path, line, field, value):
    path = tmp_path / "run.yaml"
    path.write_text(line + "\n")
    config = PipelineConfig.from_yaml(str(path))
    assert getattr(config, field) == value and type(getattr(config, field)) is type(value)


@pytest.mark.parametrize("line, message", [
    ('train_steps: "fifty"', "train_steps: Input should be a valid integer"),
    ("train_steps: 50.5", "train_steps: Input should be a valid integer, got a number with a fractional part"),
    ("train_steps: yes", "train_steps: Value error, expected a number, got a boolean"),
    ("train_steps: -3", "train_steps: Input should be greater than 0"),
    ("beam_pipeline_args: --runner=FlinkRunner", "beam_pipeline_args: Input should be a valid list"),
    ("beam_pipeline_args: [1, 2]", "beam_pipeline_args.0: Input should be a valid string"),
    ("label: [species]", "label: Input should be a valid string"),
    ("name: 2024", "name: Input should be a valid string"),
    ("task: Classification", "task: Input should be 'classification' or 'regression'"),
    ("eval_threshold: high", "eval_threshold: Input should be a valid number"),
])
def test_wrong_yaml_types_are_one_line_naming_the_file_and_field(tmp_path, line, message):
    path = tmp_path / "run.yaml"
    path.write_text(line + "\n")
    with pytest.raises(ConfigError) as raised:
        PipelineConfig.from_yaml(str(path))
    text = str(raised.value)
    assert text.startswith(f"config {path}: ") and message.replace("Value error, ", "") in text, text
    assert "\n" not in text


@pytest.mark.parametrize("content, message", [
    ("- a\n- b\n", "must be a mapping of field: value"),
    ("name: [unclosed\n", "cannot read config"),
    (b"name: caf\xe9\n", "cannot read config"),
])
def test_unreadable_yaml_is_one_line(tmp_path, content, message):
    path = tmp_path / "run.yaml"
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    with pytest.raises(ConfigError, match=message) as raised:
        PipelineConfig.from_yaml(str(path))
    assert "\n" not in str(raised.value)


def test_a_bad_config_file_through_the_cli_is_exit_2_and_one_line(tmp_path, capsys):
    path = tmp_path / "run.yaml"
    path.write_text("train_steps: fifty\n")
    assert cli.main(["run", "--config", str(path), "--home", str(tmp_path / "home")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "train_steps" in err and str(path) in err, err
    assert not (tmp_path / "home").exists()


def test_thresholds_default_per_task():
    assert PipelineConfig(task="classification").effective_threshold() == 0.6
    assert PipelineConfig(task="regression").effective_threshold() is None
    assert PipelineConfig(task="regression", eval_threshold=2.5).effective_threshold() == 2.5


def test_beam_args_from_one_quoted_string_or_repeated_flags():
    parse = cli.build_parser().parse_args
    quoted = cli.config_from_args(parse(["run", "--beam-pipeline-args=--runner=FlinkRunner --parallelism=8"]))
    repeated = cli.config_from_args(parse(["run", "--beam-pipeline-args=--runner=FlinkRunner",
                                           "--beam-pipeline-args", "--parallelism=8 "]))
    assert quoted.beam_pipeline_args == repeated.beam_pipeline_args == ["--runner=FlinkRunner", "--parallelism=8"]
    assert cli.config_from_args(parse(["run"])).beam_pipeline_args == []


def test_column_roles_in_the_config_override_the_inferred_ones_and_unknown_roles_are_refused(tmp_path):
    from kubetfx.pipelines.run import inputs

    data = tmp_path / "d.csv"
    data.write_text("customer,row,age,label\n" + "".join(f"{7 * i + 3},{i},{20 + i % 50},{'ab'[i % 2]}\n"
                                                       for i in range(200)))
    config = tmp_path / "roles.yaml"
    config.write_text(f"data: {data}\nlabel: label\nhome: {tmp_path / 'home'}\ncolumn_roles: {{features: [row]}}\n")
    roles = inputs.prepare(PipelineConfig.from_yaml(str(config))).column_roles
    assert roles == {"identifiers": ["customer"], "datetimes": [], "text": []}
    config.write_text("column_roles: {feature: [row]}\n")
    with pytest.raises(ConfigError, match="column_roles.feature.*'identifiers', 'datetimes', 'text' or 'features'"):
        PipelineConfig.from_yaml(str(config))


# ---- hostile or careless YAML: each refused in one line, at once, in little memory --------
# Under a known field, so that no earlier check (unknown fields) stops it first.
ALIAS_BOMB = "beam_pipeline_args:\n  - &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"  - &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))


def test_a_yaml_alias_bomb_is_refused_within_a_second_and_a_few_mb(tmp_path):
    import resource
    import subprocess
    import sys

    path = tmp_path / "bomb.yaml"
    path.write_text(ALIAS_BOMB)
    # A child process: on the old code this grew to gigabytes; the timeout and the memory
    # limit make the failure a test failure, not a stuck or swapping machine.
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30)); "
            "from kubetfx.pipelines.config import PipelineConfig, ConfigError\n"
            "try:\n    PipelineConfig.from_yaml(sys.argv[1])\n"
            "except ConfigError as err:\n    print(err)\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n")
    base = subprocess.run([sys.executable, "-c", "import resource; from kubetfx.pipelines import config; "
                           "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"],
                          capture_output=True, text=True, timeout=60)
    try:
        done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail("the alias bomb was still being expanded after 10 s")
    message, peak_kb = done.stdout.strip().splitlines()
    assert "YAML aliases" in message and str(path) in message, done.stdout + done.stderr
    assert int(peak_kb) - int(base.stdout) < 8 * 1024, (peak_kb, base.stdout)


@pytest.mark.parametrize("content, message", [
    ("label: &l species\nname: *l\n", "YAML aliases"),
    ("column_roles: " + "[" * 10_000 + "]" * 10_000 + "\n", "nested deeper than"),
    ("drift_feature_thresholds:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 300)), "nested deeper than"),
    ("train_steps: " + "9" * 5000 + "\n", "integer"),
    ("train_steps: 10000000000000\n", "train_steps: Input should be less than or equal to"),
    ("train_steps: 50\nlabel: a\ntrain_steps: 60\n", "duplicate key 'train_steps'"),
    ("eval_threshold: .nan\n", "eval_threshold: Input should be a finite number"),
    ("eval_threshold: .inf\n", "eval_threshold: Input should be a finite number"),
    ("eval_threshold: 1e400\n", "eval_threshold: Input should be a finite number"),
    ("eval_threshold: -0.5\n", "eval_threshold: Input should be greater than or equal to 0"),
    ("acceptance_threshold: .nan\n", "acceptance_threshold: Input should be a finite number"),
    ("acceptance_threshold: -0.5\n", "acceptance_threshold: Input should be greater than or equal to 0"),
    ("change_tolerance: .nan\n", "change_tolerance: Input should be a finite number"),
    ("drift_numeric_threshold: -0.1\n", "drift_numeric_threshold: Input should be greater than 0"),
    ("drift_categorical_threshold: 1.5\n", "drift_categorical_threshold: Input should be less than or equal to 1"),
    ("drift_categorical_threshold: high\n", "drift_categorical_threshold: Input should be a valid number"),
    ("drift_feature_thresholds: {island: high}\n", "drift_feature_thresholds.island: Input should be a valid number"),
    ("drift_feature_thresholds: {island: -1}\n", "drift_feature_thresholds.island: Input should be greater than 0"),
    ("drift_missing_rate_threshold: .nan\n", "drift_missing_rate_threshold: Input should be a finite number"),
])
def test_hostile_or_out_of_range_yaml_is_refused_in_one_line(tmp_path, content, message):
    import time

    path = tmp_path / "run.yaml"
    path.write_text(content)
    start = time.monotonic()
    with pytest.raises(ConfigError) as raised:
        PipelineConfig.from_yaml(str(path))
    text = str(raised.value)
    assert message in text and str(path) in text and "\n" not in text and len(text) < 400, text
    assert time.monotonic() - start < 1


def test_a_config_file_larger_than_the_bound_is_refused_before_it_is_parsed(tmp_path):
    from kubetfx.pipelines import config as config_module

    path = tmp_path / "big.yaml"
    path.write_text("label: species\n" + "# padding\n" * (config_module.MAX_CONFIG_BYTES // 10))
    with pytest.raises(ConfigError, match=f"config {path} is larger than"):
        PipelineConfig.from_yaml(str(path))


@pytest.mark.parametrize("argv, message", [
    (["run", "--eval-threshold", "nan"], "eval_threshold: Input should be a finite number"),
    (["run", "--eval-threshold", "-1"], "eval_threshold: Input should be greater than or equal to 0"),
    (["run", "--acceptance-threshold", "nan"], "acceptance_threshold: Input should be a finite number"),
    (["run", "--acceptance-threshold", "-1"], "acceptance_threshold: Input should be greater than or equal to 0"),
    (["monitor", "--data", "x.csv", "--threshold", "island=nan"], "drift_feature_thresholds.island: Input should be a finite number"),
    (["monitor", "--data", "x.csv", "--threshold", "island=-0.2"], "drift_feature_thresholds.island: Input should be greater than 0"),
])
def test_out_of_range_flags_are_exit_2_and_one_line(tmp_path, capsys, argv, message):
    assert cli.main(argv + ["--home", str(tmp_path / "home")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "home").exists()


def test_a_config_without_a_home_leaves_kubetfx_home_in_force(tmp_path, monkeypatch):
    """`models`, `serve` and `monitor` look in $KUBETFX_HOME: a run given a config file that
    names no home wrote to ./.kubetfx instead, and they found nothing."""
    monkeypatch.setenv("KUBETFX_HOME", str(tmp_path / "env-home"))
    bare, homed = tmp_path / "bare.yaml", tmp_path / "homed.yaml"
    bare.write_text("train_steps: 50\n")
    homed.write_text(f"home: {tmp_path / 'file-home'}\n")

    def home(*argv):
        return cli.config_from_args(cli.build_parser().parse_args(["run", *argv])).home
    assert home("--config", str(bare)) == str(tmp_path / "env-home")
    assert home("--config", str(homed)) == str(tmp_path / "file-home")  # the file's own choice stands
    assert home("--config", str(homed), "--home", str(tmp_path / "flag")) == str(tmp_path / "flag")


def test_other_data_named_in_a_config_file_is_its_own_pipeline(tmp_path):
    """As with --data: else the run shared kubetfx-penguin's metadata, baseline and serving
    dir, and its model replaced the penguins' one that `serve` answers with."""
    config = tmp_path / "trips.yaml"
    config.write_text("data: /x/Taxi Trips.csv\nlabel: fare\n")
    args = cli.build_parser().parse_args(["run", "--config", str(config)])
    assert cli.config_from_args(args).name == "kubetfx-taxi-trips"
    args = cli.build_parser().parse_args(["run", "--config", str(config), "--data", "/y/rides.csv"])
    assert cli.config_from_args(args).name == "kubetfx-rides"
    config.write_text("name: trips\ndata: /x/Taxi Trips.csv\nlabel: fare\n")
    assert cli.config_from_args(cli.build_parser().parse_args(["run", "--config", str(config)])).name == "trips"


def test_unbalanced_quotes_in_beam_args_are_one_line(tmp_path, capsys):
    assert cli.main(["run", "--home", str(tmp_path / "home"), "--beam-pipeline-args=--runner='Direct"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kubetfx: error: --beam-pipeline-args \"--runner='Direct\": No closing quotation"), err
    assert err.count("\n") == 1


def _read_in_thread(path, seconds: float = 10.0):
    """from_yaml's answer (a config or the error), or None if it did not answer in time."""
    import threading

    answer = []

    def read():
        try:
            answer.append(PipelineConfig.from_yaml(str(path)))
        except ConfigError as err:
            answer.append(err)
    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    thread.join(seconds)
    return answer[0] if answer else None


def test_a_named_pipe_nobody_writes_to_is_one_line_not_a_hang(tmp_path, monkeypatch):
    """open() on a FIFO without a writer blocked `run`, `monitor` and `rollout` forever."""
    import os

    import kubetfx.pipelines.config as config_module

    monkeypatch.setattr(config_module, "PIPE_WAIT_SECONDS", 0.5)
    fifo = tmp_path / "config.yaml"
    os.mkfifo(fifo)
    answer = _read_in_thread(fifo)
    assert isinstance(answer, ConfigError), answer
    assert str(answer) == f"config {fifo} is a pipe nobody wrote a whole config to within 0.5 s"


def test_a_config_written_into_a_pipe_is_read(tmp_path):
    """`kubetfx run --config <(make_config)`: a pipe with a writer is a config like a file."""
    import os
    import threading

    fifo = tmp_path / "config.yaml"
    os.mkfifo(fifo)

    def write():
        with open(fifo, "w") as pipe:  # blocks until from_yaml has opened the other end
            pipe.write("train_steps: 7\n")
    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    answer = _read_in_thread(fifo)
    writer.join(5)
    assert isinstance(answer, PipelineConfig) and answer.train_steps == 7, answer
