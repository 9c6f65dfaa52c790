"""What the suite's whole-pipeline container tests share (tests/test_containers.py,
test_recurring_containers.py, test_container_user_files.py): the images they run, the
check that the engine and images are there (a failure under CI's KUBETFX_REQUIRE_DOCKER,
a skip elsewhere), and removing the serving volume a home's run left in Docker."""
from __future__ import annotations

import os
import subprocess

import pytest

REPO = os.environ.get("KUBETFX_TEST_IMAGE_REPO", "kubetfx")
IMAGES = [f"{REPO}/pipeline:0.1.0", f"{REPO}/infra-validator:0.1.0"]


def require_engine_and_images(images=IMAGES) -> None:
    from kubetfx.pipelines.kubeflow.local_backend import docker

    reason = docker.unavailable_reason(list(images))
    if reason and os.environ.get("KUBETFX_REQUIRE_DOCKER"):
        pytest.fail(f"container tests must run here: {reason}")
    if reason:
        pytest.skip(reason)


def remove_serving_volume(home) -> None:
    from kubetfx.pipelines.kubeflow.local_backend import backend

    subprocess.run(["docker", "volume", "rm", "-f", backend.volume_name("kubetfx-serving", home)],
                   capture_output=True, timeout=60)
