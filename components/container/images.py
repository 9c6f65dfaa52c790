"""kubetfx's container images are built here (`make image`), never pulled: a missing one is
reported with what to run, and every `docker run` passes `--pull=never`, because by default
Docker pulls a missing image from Docker Hub, where a name such as `kubetfx/pipeline` may
hold anyone's code."""
from __future__ import annotations

import shutil
import subprocess

# For every `docker run` of a kubetfx image.
PULL_NEVER = "--pull=never"
INSPECT_TIMEOUT_SECONDS = 60


class MissingImageError(RuntimeError):
    """An image a run needs is not in the local Docker engine (a user error: build it)."""


def build_hint(image: str) -> str:
    """What to run to build `image` ("make image", with IMAGE_REPO for another repo name)."""
    repo = image.rsplit("/", 1)[0] if "/" in image else ""
    return "make image" if repo in ("", "kubetfx") else f"make image IMAGE_REPO={repo}"


def missing_image_message(image: str) -> str:
    return (f"image {image} is not in the local Docker engine: run `{build_hint(image)}` "
            "(kubetfx builds its images here and never pulls them)")


def image_exists(image: str) -> bool:
    try:
        result = subprocess.run(["docker", "image", "inspect", image], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, timeout=INSPECT_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        raise MissingImageError(f"the Docker engine did not answer within {INSPECT_TIMEOUT_SECONDS} s "
                                f"(`docker image inspect {image}`); is dockerd running? (make docker-up)") from None
    return result.returncode == 0


def require_image(image: str) -> None:
    """Raises MissingImageError with a one-line "run make image" message unless `image` is
    in the local engine (or docker itself is missing)."""
    if shutil.which("docker") is None:
        raise MissingImageError("docker is not installed or not on PATH (make docker-up installs and starts it)")
    if not image_exists(image):
        raise MissingImageError(missing_image_message(image))


def require_images(images) -> None:
    """require_image for each, reporting every missing one in one line."""
    missing = []
    for image in dict.fromkeys(images):
        try:
            require_image(image)
        except MissingImageError as err:
            if shutil.which("docker") is None:
                raise
            missing.append((image, err))
    if len(missing) == 1:
        raise missing[0][1]
    if missing:
        hints = sorted({build_hint(image) for image, _ in missing})
        raise MissingImageError(f"images {', '.join(image for image, _ in missing)} are not in the local Docker "
                                f"engine: run `{'` and `'.join(hints)}` (kubetfx builds its images here and never pulls them)")
