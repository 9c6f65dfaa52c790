"""A data file's name becomes the pipeline's name (it names Kubernetes objects and
directories: lower-case ASCII letters, digits and '-'): 'données.csv' was refused
("pipeline name 'kubetfx-données' must be lower-case letters...")."""
from __future__ import annotations

import pytest

from kubetfx.pipelines import cli


@pytest.mark.parametrize("file, name", [
    ("données.csv", "kubetfx-donnees"),
    ("Größe Tabelle.csv", "kubetfx-groe-tabelle"),
    ("penguins.csv", "kubetfx-penguins"),
    ("日本語.csv", "kubetfx-data-"),
])
def test_a_data_file_name_in_any_script_gives_a_valid_pipeline_name(tmp_path, file, name):
    (tmp_path / file).write_text("x,y\n1,a\n")
    args = cli.build_parser().parse_args(["run", "--data", str(tmp_path / file), "--label", "y"])
    config = cli.config_from_args(args)  # validates the name
    assert config.name.startswith(name) and config.name.isascii()
