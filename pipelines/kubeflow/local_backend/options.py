"""How the local KFP backend runs (the `--engine containers` flags), kept apart so the CLI
reads them without importing the backend."""
from __future__ import annotations

import dataclasses
from typing import Optional

from kubetfx.pipelines.kubeflow.local_backend import versions

DEFAULT_TASK_TIMEOUT = 3600.0


@dataclasses.dataclass(frozen=True)
class Options:
    kfp_version: str = versions.DEFAULT
    task_timeout: float = DEFAULT_TASK_TIMEOUT   # seconds one attempt of a task may run
    parallelism: int = 2                         # tasks side by side
    backoff_scale: float = 1.0                   # 1: the spec's retry backoff as Argo waits it
    image: Optional[str] = None                  # one image for every task (else the spec's)
    image_repo: Optional[str] = None             # `kubetfx/x:tag` images taken from `<repo>/x:tag`
    run_as_user: Optional[int] = None            # a 2.5 API server's PIPELINE_RUN_AS_USER (None: the image's USER)
