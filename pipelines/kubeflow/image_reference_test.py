"""Image references as a cluster parses them: what compiles, what is one line and exit 2."""
from __future__ import annotations

import pytest

from kubetfx.pipelines import cli
from kubetfx.pipelines.config import ConfigError
from kubetfx.pipelines.kubeflow import image_reference

DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize("image", [
    "kubetfx/pipeline:0.1.0", "pipeline", "registry.example.com/kubetfx/pipeline:0.1.0",
    "localhost:5000/kubetfx/pipeline", "Registry.Example.com:443/team/pipe_line.v2:latest",
    f"kubetfx/pipeline@{DIGEST}", f"kubetfx/pipeline:0.1.0@{DIGEST}", "a__b/c--d:T_1.2-x",
])
def test_references_a_registry_takes_pass(image):
    assert image_reference.check(image) == image


@pytest.mark.parametrize("image", [
    "", "kubetfx/Pipeline:0.1.0", "kubetfx/pipeline:", "kubetfx pipeline", "kubetfx/pipeline:0.1.0 ",
    "kubetfx//pipeline", "kubetfx/pipeline:-x", "kubetfx/pipeline@sha256:abc", ":0.1.0", "kubetfx/pipeline:" + "x" * 129,
    "a" * 256,
])
def test_references_no_registry_takes_are_refused(image):
    with pytest.raises(ConfigError):
        image_reference.check(image)


def test_compile_with_an_image_a_cluster_cannot_pull_is_exit_2_and_writes_nothing(tmp_path, capsys):
    """KFP uploads such a spec; every pod then waits in InvalidImageName until the run times out."""
    output = tmp_path / "spec.yaml"
    assert cli.main(["compile", "--image", "kubetfx/Pipeline:0.1.0", "--output", str(output)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kubetfx: error: --image 'kubetfx/Pipeline:0.1.0' is not an image reference a "
                          "cluster can pull (repository names are lower case)"), err
    assert err.count("\n") == 1 and not output.exists()
