"""A task pod as a Docker container that sees what a pod sees.

A KFP pod has its image, the spec's command, args, env and resources, its launcher's local
copies of the input artifacts, and the volumes of its platform spec: nothing of the host.
So the container is created (never pulled: components/container/images.py says which
`make image` to run for a missing one), the staged inputs are copied in with `docker cp`, it runs with a time limit, the
outputs are copied out, and it is removed. No bind mount; the only volumes are the named
volumes standing for the spec's PVCs. It runs without network, as a KFP pod runs:

- as the image's user (uid 1000 for kubetfx's images): KFP 2.4.x sets no security context
  on run pods, 2.5.0 only `runAsUser` from the API server's PIPELINE_RUN_AS_USER
  (backend/src/v2/compiler/argocompiler/container.go, `GetPipelineRunAsUser`), given here
  as `user`; never as the calling user, so a stage that needs root or the caller's files
  fails here as it would in the cluster, even when the tests run as root;
- with no fsGroup: nothing chowns a volume to the pod's user. A PVC is what the storage
  class makes it; kind's local-path provisioner (KFP's test cluster, manifests/overlays/kind)
  creates a root-owned directory with mode 0777 (its setup script `mkdir -m 0777`), so that
  is what the named volume standing for a claim is;
- with KFP_POD_NAME and KFP_POD_UID set (KFP 2.4.0 and 2.5.0 argocompiler/common.go
  `commonEnvs`, downward API metadata.name and metadata.uid). KFP v2 sets no KFP_NAMESPACE
  (only v1 did); the launcher reads the namespace from the service account
  (v2/cmd/launcher-v2/main.go `config.InPodNamespace`).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import uuid
from pathlib import Path
from typing import IO, Optional

from kubetfx.components.container import images

COMMAND_TIMEOUT_SECONDS = 120  # create, cp, inspect, rm: anything but the task itself
IMAGE_UID = 1000               # USER of kubetfx's images (components/container/Dockerfile)


class DockerUnavailable(RuntimeError):
    """No docker binary or no engine; the message says what to do."""


class TaskTimedOut(RuntimeError):
    pass


def binary() -> str:
    found = shutil.which("docker")
    if not found:
        raise DockerUnavailable("the docker command is not installed or not on PATH; "
                                "--engine containers needs the Docker engine (or use --engine local)")
    return found


def _docker(*args: str, timeout: float = COMMAND_TIMEOUT_SECONDS, check: bool = True) -> subprocess.CompletedProcess:
    try:
        result = subprocess.run([binary(), *args], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise DockerUnavailable(f"'docker {args[0]}' did not answer within {timeout:.0f} s; is the engine running?") from None
    if check and result.returncode != 0:
        message = (result.stderr or result.stdout).strip().splitlines()
        raise DockerUnavailable(f"'docker {' '.join(args[:2])}' failed: {message[-1] if message else result.returncode}")
    return result


def unavailable_reason(images) -> str:
    """Why container runs cannot happen here ('' when they can): for tests to skip or fail."""
    if not shutil.which("docker") or subprocess.call(["docker", "info"], stdout=subprocess.DEVNULL,
                                                     stderr=subprocess.DEVNULL, timeout=60) != 0:
        return "no Docker engine (make docker-up)"
    for image in images:
        if subprocess.call(["docker", "image", "inspect", image], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=60) != 0:
            return f"image {image} not built (make image)"
    from kubetfx.pipelines.kubeflow import object_store_server
    try:
        object_store_server.server_binary()
    except object_store_server.ObjectStoreUnavailable as err:
        return str(err)
    return ""


def calling_user() -> str:
    return f"{os.getuid()}:{os.getgid()}"


def ensure_volume(name: str, image: str, labels: dict) -> None:
    """A named volume for a PVC as kind's local-path provisioner makes one: root-owned, mode
    0777, never chowned to anyone (KFP sets no fsGroup)."""
    if _docker("volume", "inspect", name, check=False).returncode == 0:
        return
    _docker("volume", "create", *[f"--label={k}={v}" for k, v in labels.items()], name)
    _docker("run", "--rm", images.PULL_NEVER, "--network", "none", "--user", "0:0", "-v", f"{name}:/volume",
            "--entrypoint", "sh", image, "-c", "chown 0:0 /volume && chmod 0777 /volume")


def remove_left_over(labels: dict) -> list:
    """Removes every container carrying all of `labels`; returns their names. A run killed by
    SIGKILL runs no cleanup: its `docker start -a` lives on, and so does the container, past
    the time limit the run enforced, until its task ends; then it stays, stopped. The next run on the
    same home and pipeline, which holds their lock (none of their runs is alive), removes them."""
    filters = [f"--filter=label={key}={value}" for key, value in labels.items()]
    found = _docker("ps", "-a", *filters, "--format", "{{.Names}}").stdout.split()
    if found:
        _docker("rm", "-f", "-v", *found, check=False)
    return found


def pod_env(pod_name: str) -> dict:
    """What KFP's executor template gives every run pod (argocompiler/common.go commonEnvs)."""
    return {"KFP_POD_NAME": pod_name, "KFP_POD_UID": str(uuid.uuid4())}


def memory_flag(gigabytes: float) -> str:
    return f"{int(gigabytes * 1024)}m"


class Container:
    """One attempt of one task: create, copy in, start with a time limit, copy out, remove."""

    def __init__(self, name: str, image: str, command: list, args: list, env: dict,
                 volumes: dict, cpu_limit: Optional[float], memory_limit: Optional[float], labels: dict,
                 user: Optional[int] = None):
        # `user`: PIPELINE_RUN_AS_USER (2.5.0); None: the image's USER, as a pod without a
        # security context runs.
        flags = ["--name", name, images.PULL_NEVER, "--network", "none",
                 *(["--user", str(user)] if user is not None else []),
                 *[f"--label={k}={v}" for k, v in labels.items()]]
        self.uid = IMAGE_UID if user is None else int(user)
        for key, value in {**pod_env(name), **env}.items():
            flags += ["-e", f"{key}={value}"]
        for volume, mount_path in volumes.items():
            flags += ["--mount", f"type=volume,source={volume},target={mount_path}"]
        if cpu_limit:
            flags += ["--cpus", str(min(cpu_limit, os.cpu_count() or 1))]
        if memory_limit:
            flags += ["--memory", memory_flag(memory_limit)]
        self.name = name
        _docker("create", *flags, "--entrypoint", command[0], image, *command[1:], *args)

    def copy_in(self, staging: Path, names: list) -> None:
        """Copies `staging/<name>` trees to `/<name>` in the container, owned by the pod's
        user (gid 0) as the launcher's own downloads are in a pod: it runs in the same
        container as that user (a tar stream keeps the owner it carries; `docker cp -a`
        cannot resolve a numeric --user)."""
        def owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
            info.uid, info.gid, info.uname, info.gname = self.uid, 0, "", ""
            return info
        archive = staging.with_name(staging.name + ".tar")
        with tarfile.open(archive, mode="w") as tar:
            for name in names:
                tar.add(staging / name, arcname=name, filter=owned)
        try:
            with open(archive, "rb") as stream:
                result = subprocess.run([binary(), "cp", "-", f"{self.name}:/"], stdin=stream, capture_output=True,
                                        text=True, timeout=COMMAND_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            raise DockerUnavailable(f"'docker cp' into {self.name} did not end within {COMMAND_TIMEOUT_SECONDS} s") from None
        finally:
            archive.unlink()
        if result.returncode != 0:
            raise DockerUnavailable(f"'docker cp' into {self.name} failed: {result.stderr.strip()}")

    def copy_out(self, path: str, local: Path) -> bool:
        local.parent.mkdir(parents=True, exist_ok=True)
        return _docker("cp", f"{self.name}:{path}", str(local), check=False).returncode == 0

    def mounts(self) -> list:
        return json.loads(_docker("inspect", "--format", "{{json .Mounts}}", self.name).stdout)

    def run(self, out: IO[bytes], timeout: float) -> int:
        """`docker start -a`, its output to `out`; past `timeout` the container is killed."""
        process = subprocess.Popen([binary(), "start", "-a", self.name], stdout=out, stderr=subprocess.STDOUT)
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _docker("kill", self.name, check=False)
            try:
                process.wait(timeout=COMMAND_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
            raise TaskTimedOut(f"stopped after {timeout:.0f} s (the task time limit, --task-timeout)") from None

    def remove(self) -> None:
        _docker("rm", "-f", "-v", self.name, check=False)
