"""Every kustomize entry point builds; every object validates strictly against the
Kubernetes schemas of a pinned version; every workload follows the container rules."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from conftest import REPO

KUBERNETES_VERSION = "1.31.0"  # the kind node image in manifests/kind/cluster.yaml
ENTRY_POINTS = ["base", "overlays/kind", "overlays/cloud", "overlays/canary"]
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}


def _render(entry: str) -> list:
    if not shutil.which("kubectl"):
        pytest.fail("kubectl (with kustomize) is needed: apt-get install kubectl, or see manifests/README.md")
    out = subprocess.run(["kubectl", "kustomize", str(REPO / "manifests" / entry)],
                         capture_output=True, text=True, check=True)
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.fixture(scope="module", params=ENTRY_POINTS)
def rendered(request):
    return request.param, _render(request.param)


def _pod_specs(objects):
    for obj in objects:
        if obj["kind"] in WORKLOAD_KINDS:
            spec = obj["spec"]["template"]["spec"] if obj["kind"] != "CronJob" else \
                obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
            yield obj, spec


def test_entry_point_builds_and_validates_strictly(rendered):
    import kubernetes_validate

    entry, objects = rendered
    assert objects, entry
    for obj in objects:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)  # raises on any error


def test_every_container_is_locked_down(rendered):
    entry, objects = rendered
    workloads = list(_pod_specs(objects))
    assert workloads, f"{entry} has no workload"
    for obj, spec in workloads:
        pod = spec.get("securityContext", {})
        assert pod.get("runAsNonRoot") is True and pod.get("seccompProfile", {}).get("type") == "RuntimeDefault", obj["metadata"]["name"]
        for container in spec.get("initContainers", []) + spec["containers"]:
            where = f"{entry}: {obj['metadata']['name']}/{container['name']}"
            sc = container.get("securityContext", {})
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("readOnlyRootFilesystem") is True, where
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not sc.get("privileged"), where
            resources = container.get("resources", {})
            assert {"cpu", "memory"} <= set(resources.get("requests", {})), where
            assert {"cpu", "memory"} <= set(resources.get("limits", {})), where
            image = container["image"]
            assert "@sha256:" in image or re.search(r":[\w.-]+$", image), f"{where}: unpinned image {image}"
            assert not image.endswith(":latest"), where
            if entry == "overlays/cloud":
                assert re.search(r"@sha256:[0-9a-f]{64}$", image), f"{where}: cloud images go by digest"


def test_every_namespace_we_create_has_a_default_deny_policy(rendered):
    entry, objects = rendered
    namespaces = {o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"}
    assert namespaces, entry
    for namespace in namespaces:
        policies = [o for o in objects if o["kind"] == "NetworkPolicy" and o["metadata"].get("namespace") == namespace]
        deny = [p for p in policies if p["spec"]["podSelector"] == {} and
                set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"} and
                not p["spec"].get("ingress") and not p["spec"].get("egress")]
        assert deny, f"{entry}: namespace {namespace} has no default-deny NetworkPolicy"


def test_no_literal_secrets_and_least_privilege_rbac(rendered):
    entry, objects = rendered
    assert not [o for o in objects if o["kind"] == "Secret"], f"{entry}: secrets are referenced, never committed"
    assert not [o for o in objects if o["kind"] in ("ClusterRole", "ClusterRoleBinding")], entry
    for role in (o for o in objects if o["kind"] == "Role"):
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] and "*" not in rule["resources"], entry
            assert not {"create", "update", "patch", "delete"} & set(rule["verbs"]), entry
            assert "secrets" not in rule["resources"], entry


def test_canary_splits_one_service_between_two_tracks():
    objects = _render("overlays/canary")
    service = next(o for o in objects if o["kind"] == "Service" and o["metadata"]["name"] == "serving")
    tracks = {}
    for obj, spec in _pod_specs(objects):
        labels = obj["spec"]["template"]["metadata"]["labels"]
        assert all(labels.get(k) == v for k, v in service["spec"]["selector"].items())  # both behind the Service
        tracks[labels["kubetfx.dev/track"]] = obj["spec"]["replicas"]
    assert tracks == {"stable": 3, "canary": 1}  # 25% of the traffic to the candidate
