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
    ("name", "Bad_Name", "pipeline name"),
    ("task", "ranking", "task must be one of"),
    ("on_anomalies", "ignore", "on_anomalies must be one of"),
    ("train_steps", 0, "train_steps must be positive"),
])
def test_invalid_values_are_refused_with_the_reason(field, value, message):
    with pytest.raises(ConfigError, match=message):
        PipelineConfig(**{field: value}).validate()


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
