"""The KFP backend versions this backend emulates, and what differs between them.

Checked in kubeflow/pipelines at each tag:
- retries: `backend/src/v2/compiler/argocompiler/container.go` sets no `retryStrategy` on
  the executor template at 2.4.0; `getTaskRetryStrategy` appears at 2.4.1 and is in 2.5.0.
- executor logs: `backend/src/v2/driver/driver.go` `provisionOutputs` adds an
  `executor-logs` output (`system.Artifact`) when `--publish_logs` is true, its default in
  `backend/src/v2/cmd/driver/main.go` at 2.5.0; absent at 2.4.0 and 2.4.1.
- the pod's user: 2.5.0 sets `runAsUser` from the API server's PIPELINE_RUN_AS_USER
  (`backend/src/v2/compiler/argocompiler/argo.go` and `container.go`, GetPipelineRunAsUser);
  2.4.x sets no security context, so pods run as the image's USER.
"""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class KfpVersion:
    tag: str
    retries: bool        # Argo retryStrategy from the task's retryPolicy
    publish_logs: bool   # the driver's `executor-logs` output, tee'd by the launcher
    run_as_user: bool = False   # PIPELINE_RUN_AS_USER honoured


VERSIONS = {
    "2.4.0": KfpVersion("2.4.0", retries=False, publish_logs=False),
    "2.4.1": KfpVersion("2.4.1", retries=True, publish_logs=False),
    "2.5.0": KfpVersion("2.5.0", retries=True, publish_logs=True, run_as_user=True),
}
# Short names: the first release of each minor (manifests/cluster.mk pins KFP_VERSION 2.5.0).
ALIASES = {"2.4": "2.4.0", "2.5": "2.5.0"}
DEFAULT = "2.5.0"


def parse(name: str) -> KfpVersion:
    tag = ALIASES.get(name, name)
    if tag not in VERSIONS:
        choices = ", ".join([*ALIASES, *VERSIONS])
        raise ValueError(f"KFP version {name!r} is not emulated; choose one of {choices}")
    return VERSIONS[tag]


def run_as_user(version: KfpVersion, uid):
    """The pod's uid for PIPELINE_RUN_AS_USER `uid` (None: the image's USER)."""
    if uid is None:
        return None
    if not version.run_as_user:
        raise ValueError(f"KFP {version.tag} has no PIPELINE_RUN_AS_USER (added in 2.5.0): its pods run as the "
                         "image's user")
    if int(uid) < 0:
        raise ValueError(f"PIPELINE_RUN_AS_USER {uid} is not a uid")
    return int(uid)
