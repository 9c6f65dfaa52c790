"""A missing kubetfx image is a one-line "run make image", never a pull from a registry."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from kubetfx.components.container import images

ABSENT = "kubetfx-images-test/never-built:0.0.0"


def test_the_message_says_what_to_run():
    assert images.missing_image_message("kubetfx/pipeline:0.1.0") == (
        "image kubetfx/pipeline:0.1.0 is not in the local Docker engine: run `make image` "
        "(kubetfx builds its images here and never pulls them)")
    assert images.build_hint("kubetfx-me/infra-validator:0.1.0") == "make image IMAGE_REPO=kubetfx-me"


def test_without_docker_the_message_says_how_to_get_it(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(images.MissingImageError, match="docker is not installed"):
        images.require_image("kubetfx/pipeline:0.1.0")


@pytest.fixture
def engine():
    if not shutil.which("docker") or subprocess.call(["docker", "info"], stdout=subprocess.DEVNULL,
                                                     stderr=subprocess.DEVNULL, timeout=60):
        if os.environ.get("KUBETFX_REQUIRE_DOCKER"):
            pytest.fail("container tests must run here: no Docker engine (make docker-up)")
        pytest.skip("no Docker engine (make docker-up)")


@pytest.mark.container
def test_a_missing_image_is_refused_with_the_message(engine):
    with pytest.raises(images.MissingImageError) as err:
        images.require_images([ABSENT, ABSENT])
    assert str(err.value) == images.missing_image_message(ABSENT)
    with pytest.raises(images.MissingImageError, match="images .*, .* are not in the local Docker engine"):
        images.require_images([ABSENT, "kubetfx-images-test/other:0"])


@pytest.mark.container
def test_docker_run_with_pull_never_does_not_reach_a_registry(engine):
    out = subprocess.run(["docker", "run", "--rm", images.PULL_NEVER, ABSENT, "true"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "No such image" in out.stderr and "Unable to find image" not in out.stderr  # no pull tried
