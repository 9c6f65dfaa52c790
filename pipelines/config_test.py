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
    from kubetfx.pipelines import prepare

    data = tmp_path / "d.csv"
    data.write_text("customer,row,age,label\n" + "".join(f"{7 * i + 3},{i},{20 + i % 50},{'ab'[i % 2]}\n"
                                                       for i in range(200)))
    config = tmp_path / "roles.yaml"
    config.write_text(f"data: {data}\nlabel: label\nhome: {tmp_path / 'home'}\ncolumn_roles: {{features: [row]}}\n")
    roles = prepare.prepare(PipelineConfig.from_yaml(str(config))).column_roles
    assert roles == {"identifiers": ["customer"], "datetimes": [], "text": []}
    config.write_text("column_roles: {feature: [row]}\n")
    with pytest.raises(ConfigError, match="column_roles.feature.*'identifiers', 'datetimes', 'text' or 'features'"):
        PipelineConfig.from_yaml(str(config))
