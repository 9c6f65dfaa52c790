"""Is an `--image` a reference a cluster can pull? Checked when the spec is compiled (and
for `run --engine containers`), because nothing after that does: KFP uploads a spec with
any string as an image, and on the cluster each pod then waits in InvalidImageName until
the run's timeout, with no task log to say why.

The grammar is the container registries' own (distribution/reference regexp.go, which
Kubernetes' kubelet and containerd parse image names with): an optional domain (host and
port), lower-case path components, an optional tag, an optional digest; at most 255
characters for the name."""
from __future__ import annotations

import re

from kubetfx.pipelines.config import ConfigError

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_NAME = rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(rf"(?P<name>{_NAME})(?::{_TAG})?(?:@{_DIGEST})?")
NAME_MAX = 255


def check(image: str, flag: str = "--image") -> str:
    """`image`, or ConfigError (one line, exit 2) saying what is wrong with it."""
    found = _REFERENCE.fullmatch(image or "")
    if found is None:
        hint = " (repository names are lower case)" if image and image != image.lower() else ""
        raise ConfigError(f"{flag} {image!r} is not an image reference a cluster can pull{hint}: expected "
                          "[HOST[:PORT]/]NAME[:TAG][@DIGEST], e.g. registry.example.com/kubetfx/pipeline:0.1.0")
    if len(found.group("name")) > NAME_MAX:
        raise ConfigError(f"{flag}: the image name is longer than {NAME_MAX} characters")
    return image


def check_repo(repo: str, flag: str = "--image-repo") -> str:
    """A repository prefix (`registry.example.com/team`) that `<repo>/pipeline:TAG` extends."""
    try:
        check(f"{repo}/pipeline", flag)
    except ConfigError:
        raise ConfigError(f"{flag} {repo!r} is not a repository an image name can extend: expected "
                          "[HOST[:PORT]/]PATH, lower case, e.g. registry.example.com/team") from None
    return repo
