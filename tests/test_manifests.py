"""The cluster manifests, rendered for real by kustomize: every entry point builds and
validates strictly against the Kubernetes schemas of the kind node's version; every pod we
create passes Pod Security "restricted"; what the compiled spec's run pods mount is in the
namespace where Kubeflow Pipelines creates them; the monitor CronJob is bounded and runs a
command the CLI parses; the rollout overlay's two TF Serving tracks load the configs the
inference logger writes, and its CronJob runs the rollout rule where the logger reads the state."""
from __future__ import annotations

import dataclasses
import functools
import re
import shutil
import subprocess
import tempfile

import pytest
import yaml

from conftest import REPO

KUBERNETES_VERSION = "1.31.0"  # the kind node image in manifests/kind/cluster.yaml
MANIFESTS = REPO / "manifests"
# Where each entry point's run pods are: single-user KFP creates them in its own namespace
# `kubeflow` (KFP 2.5.0 backend/src/apiserver/resource/resource_manager.go CreateRun: the
# run's namespace, empty in single-user mode, else the API server's POD_NAMESPACE);
# multi-user KFP in the experiment's profile namespace (GetNamespaceFromExperimentId).
RUN_NAMESPACE = {
    "base": "kubeflow",
    "overlays/kind": "kubeflow",
    "overlays/cloud": "kubeflow",
    "overlays/rollout": "kubeflow",
    "overlays/multi-user": "kubeflow-user-example-com",
}
ENTRY_POINTS = list(RUN_NAMESPACE)
# Secrets KFP itself creates in every namespace it runs pods in: its install (single-user)
# or its profile controller (multi-user, manifests/kustomize/base/installs/multi-user/
# pipelines-profile-controller/sync.py at 2.5.0). Ours may reference these and no others.
KFP_SECRETS = {"mlpipeline-minio-artifact"}
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}
GOLDEN_SPEC = REPO / "pipelines" / "testdata" / "kubetfx-penguin.golden.yaml"


def _kustomize_command(entry: str) -> list:
    # kubectl ships kustomize (`kubectl kustomize`, v5.5 in kubectl 1.32); a standalone
    # `kustomize` binary does the same.
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize", entry]
    if shutil.which("kustomize"):
        return ["kustomize", "build", entry]
    pytest.fail("kustomize is needed: kubectl (which includes it) or kustomize on PATH; see manifests/README.md")


@functools.lru_cache(maxsize=None)
def _render(entry: str) -> tuple:
    out = subprocess.run(_kustomize_command(str(MANIFESTS / entry)), capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, f"{entry} does not build: {out.stderr.strip()}"
    return tuple(d for d in yaml.safe_load_all(out.stdout) if d)


@pytest.fixture(params=ENTRY_POINTS)
def rendered(request):
    return request.param, _render(request.param)


def _pod_template(obj: dict) -> dict:
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]
    return obj["spec"]["template"]


def _workloads(objects):
    return [(o, _pod_template(o)["spec"]) for o in objects if o["kind"] in WORKLOAD_KINDS]


def _containers(spec: dict) -> list:
    return spec.get("initContainers", []) + spec["containers"] + spec.get("ephemeralContainers", [])


def _one(objects, kind: str, name: str) -> dict:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def _compiled_platform() -> dict:
    """The Kubernetes platform section of the compiled spec (second YAML document)."""
    docs = list(yaml.safe_load_all(GOLDEN_SPEC.read_text()))
    return docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


def test_entry_point_builds_and_validates_strictly(rendered):
    import kubernetes_validate

    entry, objects = rendered
    assert objects, entry
    for obj in objects:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)  # raises on any error


# Pod Security Standards, "restricted" profile (which includes "baseline"), as the
# Kubernetes 1.31 admission controller checks them (kubernetes.io/docs/concepts/security/
# pod-security-standards/).
RESTRICTED_VOLUME_TYPES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                           "persistentVolumeClaim", "projected", "secret"}
SAFE_SYSCTLS = {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
                "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
                "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
                "net.ipv4.tcp_keepalive_probes"}


def pod_security_restricted_violations(spec: dict) -> list:
    """What the "restricted" profile rejects in a pod spec; empty when it passes."""
    bad = []
    pod = spec.get("securityContext", {})
    for host in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(host):
            bad.append(host)
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUME_TYPES:
            bad.append(f"volume {volume['name']}: {sorted(kinds)}")
    for sysctl in pod.get("sysctls", []):
        if sysctl["name"] not in SAFE_SYSCTLS:
            bad.append(f"sysctl {sysctl['name']}")
    if pod.get("runAsUser") == 0:
        bad.append("pod runAsUser 0")
    for c in _containers(spec):
        sc, name = c.get("securityContext", {}), c["name"]
        if sc.get("privileged"):
            bad.append(f"{name}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            bad.append(f"{name}: allowPrivilegeEscalation not false")
        caps = sc.get("capabilities", {})
        if "ALL" not in caps.get("drop", []):
            bad.append(f"{name}: capabilities not dropping ALL")
        if set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
            bad.append(f"{name}: adds capabilities {caps['add']}")
        if not (sc.get("runAsNonRoot", pod.get("runAsNonRoot")) is True):
            bad.append(f"{name}: runAsNonRoot not true")
        if sc.get("runAsUser") == 0:
            bad.append(f"{name}: runAsUser 0")
        seccomp = sc.get("seccompProfile", pod.get("seccompProfile", {})).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            bad.append(f"{name}: seccompProfile {seccomp}")
        if sc.get("procMount", "Default") != "Default":
            bad.append(f"{name}: procMount")
        if any(p.get("hostPort") for p in c.get("ports", [])):
            bad.append(f"{name}: hostPort")
        selinux = sc.get("seLinuxOptions", pod.get("seLinuxOptions", {}))
        if selinux.get("user") or selinux.get("role") or \
                selinux.get("type", "container_t") not in ("container_t", "container_init_t", "container_kvm_t"):
            bad.append(f"{name}: seLinuxOptions")
    return bad


def test_the_restricted_check_rejects_what_kubernetes_rejects():
    good = _pod_template(_one(_render("base"), "Deployment", "kubetfx-serving"))["spec"]
    assert pod_security_restricted_violations(good) == []
    for breakage in (
        lambda s: s["containers"][0]["securityContext"].pop("allowPrivilegeEscalation"),
        lambda s: s["containers"][0]["securityContext"]["capabilities"].update(drop=["NET_RAW"]),
        lambda s: s["securityContext"].pop("runAsNonRoot"),
        lambda s: s["securityContext"].update(seccompProfile={"type": "Unconfined"}),
        lambda s: s["volumes"].append({"name": "host", "hostPath": {"path": "/"}}),
        lambda s: s.update(hostNetwork=True),
    ):
        spec = yaml.safe_load(yaml.safe_dump(good))
        breakage(spec)
        assert pod_security_restricted_violations(spec), breakage


def test_every_pod_we_create_passes_pod_security_restricted(rendered):
    entry, objects = rendered
    workloads = _workloads(objects)
    assert workloads, f"{entry} has no workload"
    for obj, spec in workloads:
        assert pod_security_restricted_violations(spec) == [], f"{entry}: {obj['kind']} {obj['metadata']['name']}"


def test_every_container_is_bounded_pinned_and_read_only(rendered):
    entry, objects = rendered
    for obj, spec in _workloads(objects):
        for container in _containers(spec):
            where = f"{entry}: {obj['metadata']['name']}/{container['name']}"
            assert container.get("securityContext", {}).get("readOnlyRootFilesystem") is True, where
            resources = container.get("resources", {})
            assert {"cpu", "memory"} <= set(resources.get("requests", {})), where
            assert {"cpu", "memory"} <= set(resources.get("limits", {})), where
            image = container["image"]
            assert "@sha256:" in image or re.search(r":[\w.-]+$", image.rsplit("/", 1)[-1]), f"{where}: unpinned {image}"
            assert not image.endswith(":latest"), where
            if entry == "overlays/cloud":
                assert re.search(r"@sha256:[0-9a-f]{64}$", image), f"{where}: cloud images go by digest"
        for volume in spec.get("volumes", []):
            if "emptyDir" in volume:  # a pod cannot fill its node's disk
                assert volume["emptyDir"].get("sizeLimit"), f"{entry}: {obj['metadata']['name']} {volume['name']}"


def test_everything_is_in_the_namespace_where_kfp_creates_the_run_pods(rendered):
    entry, objects = rendered
    for obj in objects:
        assert obj["metadata"].get("namespace") == RUN_NAMESPACE[entry], f"{entry}: {obj['kind']} {obj['metadata']['name']}"
    # Namespaces belong to KFP (kubeflow) or to Kubeflow's profile controller: never created,
    # labelled or deleted by `kubectl apply/delete -k` of ours.
    assert not [o for o in objects if o["kind"] == "Namespace"], entry


def test_what_the_compiled_spec_mounts_exists_beside_the_run_pods(rendered):
    entry, objects = rendered
    executors = _compiled_platform()
    mounts = {(m["constant"], m["mountPath"]) for e in executors.values() for m in e.get("pvcMount", [])}
    assert mounts, "the compiled spec mounts no volume (the Pusher's serving directory is expected)"
    claims = {o["metadata"]["name"]: o for o in objects if o["kind"] == "PersistentVolumeClaim"}
    for claim, path in mounts:
        assert claim in claims, f"{entry}: the spec mounts PVC {claim}, which is not in {RUN_NAMESPACE[entry]}"
        # TF Serving reads the same claim at the same path the Pusher writes it.
        serving = _one(objects, "Deployment", "kubetfx-serving")
        spec = _pod_template(serving)["spec"]
        volume = next(v["name"] for v in spec["volumes"] if v.get("persistentVolumeClaim", {}).get("claimName") == claim)
        assert {"name": volume, "mountPath": path, "readOnly": True} in spec["containers"][0]["volumeMounts"], entry
    secrets = {s["secretName"] for e in executors.values() for s in e.get("secretAsEnv", []) + e.get("secretAsVolume", [])}
    assert secrets <= KFP_SECRETS, f"the spec uses secrets nobody creates in {RUN_NAMESPACE[entry]}: {secrets - KFP_SECRETS}"


def test_our_pods_use_only_service_accounts_we_ship_and_secrets_kfp_ships(rendered):
    entry, objects = rendered
    accounts = {o["metadata"]["name"] for o in objects if o["kind"] == "ServiceAccount"}
    for obj, spec in _workloads(objects):
        assert spec.get("serviceAccountName") in accounts, f"{entry}: {obj['metadata']['name']}"
        assert spec.get("automountServiceAccountToken") is False, f"{entry}: {obj['metadata']['name']} needs no API token"
        refs = {e["valueFrom"]["secretKeyRef"]["name"] for c in spec["containers"] for e in c.get("env", [])
                if "secretKeyRef" in e.get("valueFrom", {})}
        refs |= {v["secret"]["secretName"] for v in spec.get("volumes", []) if "secret" in v}
        assert refs <= KFP_SECRETS, f"{entry}: {obj['metadata']['name']} references {refs - KFP_SECRETS}"


def test_no_literal_secrets_and_no_rbac(rendered):
    entry, objects = rendered
    assert not [o for o in objects if o["kind"] == "Secret"], f"{entry}: secrets are referenced, never committed"
    assert not [o for o in objects if o["kind"] in ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")], entry


def test_every_pod_we_create_is_fenced_and_kfp_pods_are_left_alone(rendered):
    entry, objects = rendered
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    for policy in policies:  # an empty selector would also fence KFP's own pods in the namespace
        assert policy["spec"]["podSelector"].get("matchLabels"), f"{entry}: {policy['metadata']['name']}"
    for obj, _ in _workloads(objects):
        labels = _pod_template(obj)["metadata"]["labels"]
        fencing = [p for p in policies if all(labels.get(k) == v for k, v in p["spec"]["podSelector"]["matchLabels"].items())]
        types = {t for p in fencing for t in p["spec"]["policyTypes"]}
        assert types == {"Ingress", "Egress"}, f"{entry}: {obj['metadata']['name']} is not fenced both ways"


# The two schedules of `kubetfx monitor`: new data (drift) and the inference log (skew).
MONITORS = {"kubetfx-monitor": "data", "kubetfx-monitor-skew": "logs"}


@pytest.mark.parametrize("name", MONITORS)
def test_monitor_cron_job_is_bounded(rendered, name):
    entry, objects = rendered
    cron = _one(objects, "CronJob", name)
    job = cron["spec"]["jobTemplate"]["spec"]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert cron["spec"]["startingDeadlineSeconds"] > 0
    assert 0 < job["activeDeadlineSeconds"] <= 3600
    assert 0 <= job["backoffLimit"] <= 3
    assert job["ttlSecondsAfterFinished"] > 0
    assert job["template"]["spec"]["restartPolicy"] == "Never"
    container = job["template"]["spec"]["containers"][0]
    assert container["image"].split("@")[0].split(":")[0].endswith("kubetfx/pipeline"), container["image"]
    if entry != "overlays/cloud":
        assert container["image"] == "kubetfx/pipeline:0.1.0"


def _monitor_container(name):
    cron = _one(_render("base"), "CronJob", name)
    return cron, cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize("name", MONITORS)
def test_monitor_verdicts_fail_the_job_without_retry(name):
    from kubetfx.pipelines import exit_codes

    cron, container = _monitor_container(name)
    rules = cron["spec"]["jobTemplate"]["spec"]["podFailurePolicy"]["rules"]
    fail_now = {code for r in rules if r["action"] == "FailJob" for code in r["onExitCodes"]["values"]
                if r["onExitCodes"]["containerName"] == container["name"] and r["onExitCodes"]["operator"] == "In"}
    assert fail_now == {exit_codes.USAGE, exit_codes.DRIFT}


@pytest.mark.parametrize("name", MONITORS)
def test_monitor_command_is_one_the_cli_parses(name):
    from kubetfx.pipelines import cli

    _, container = _monitor_container(name)
    assert container["command"] == ["python", "-m", "kubetfx.pipelines.cli"]
    config = _one(_render("base"), "ConfigMap", "kubetfx-monitor")["data"]
    # Kubernetes expands $(VAR) from the container's environment (here: the ConfigMap).
    args = [re.sub(r"\$\((\w+)\)", lambda m: config[m.group(1)], a) for a in container["args"]]
    assert args[0] == "monitor" and "--home" in args and args[args.index("--home") + 1] == "/kubetfx"
    parsed = cli.build_parser().parse_args(args)  # SystemExit(2) on any flag the command does not have
    assert parsed.command == "monitor" and parsed.home == "/kubetfx"
    # What a pod has: the serving volume (read-only) and the object store, no metadata store.
    assert parsed.serving_dir == f"/kubetfx/serving/{config['KUBETFX_PIPELINE_NAME']}"
    serving = next(m for m in container["volumeMounts"] if parsed.serving_dir.startswith(m["mountPath"] + "/")
                   and m["mountPath"] != "/kubetfx")
    assert serving["readOnly"] is True and serving["mountPath"] == "/kubetfx/serving"
    from kubetfx.pipelines.kubeflow import remote_source
    source = getattr(parsed, MONITORS[name])  # the other source is not given
    assert remote_source.is_remote(source) and not getattr(parsed, {"data": "logs", "logs": "data"}[MONITORS[name]])
    if name == "kubetfx-monitor-skew":  # reads what the inference logger ships
        logger = _one(_render("base"), "Deployment", "kubetfx-inference-logger")
        logger_args = _pod_template(logger)["spec"]["containers"][0]["args"]
        assert container["args"][container["args"].index("--logs") + 1] == logger_args[logger_args.index("--log-dir") + 1]
    env = {e["name"] for e in container["env"]} | set(config)
    assert {"KUBETFX_OBJECT_STORE_ENDPOINT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= env


def test_inference_logger_is_in_front_of_tf_serving_and_ships_where_monitor_reads(rendered):
    from kubetfx.pipelines import cli
    from kubetfx.pipelines.kubeflow import remote_source

    entry, objects = rendered
    logger = _one(objects, "Deployment", "kubetfx-inference-logger")
    container = _pod_template(logger)["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "kubetfx.pipelines.cli"]
    config = _one(objects, "ConfigMap", "kubetfx-monitor")["data"]
    args = [re.sub(r"\$\((\w+)\)", lambda m: config[m.group(1)], a) for a in container["args"]]
    parsed = cli.build_parser().parse_args(args)  # SystemExit(2) on a flag the command does not have
    assert parsed.command == "inference-logger"
    if entry == "overlays/rollout":  # the log is on the rollout's claim, the home its rule reads
        home = next(m for m in container["volumeMounts"] if parsed.log_dir.startswith(m["mountPath"] + "/"))
        assert _claim(logger, home["name"]) == "kubetfx-rollout"
    else:
        assert remote_source.is_remote(parsed.log_dir)
    serving = _one(objects, "Service", "kubetfx-serving")
    http = next(p["port"] for p in serving["spec"]["ports"] if p["name"] == "http")
    assert parsed.upstream == f"http://kubetfx-serving:{http}" and parsed.host == "0.0.0.0"
    assert parsed.port == container["ports"][0]["containerPort"]
    service = _one(objects, "Service", "kubetfx-inference-logger")
    assert service["spec"]["selector"].items() <= _pod_template(logger)["metadata"]["labels"].items()
    spool = next(m for m in container["volumeMounts"] if m["mountPath"] == parsed.spool_dir)
    limit = next(v for v in _pod_template(logger)["spec"]["volumes"] if v["name"] == spool["name"])["emptyDir"]["sizeLimit"]
    assert parsed.log_shards * parsed.log_shard_mb <= int(limit.rstrip("Mi"))  # the spool cannot overflow its volume


def test_cloud_launcher_config_is_one_kfp_reads():
    """KFP 2.5.0 backend/src/v2/config/env.go (defaultPipelineRoot, providers), s3.go and
    gcs.go (provider structure, credentials: fromEnv or a secretRef)."""
    from kubetfx.pipelines.kubeflow import object_store

    config = _one(_render("overlays/cloud"), "ConfigMap", "kfp-launcher")["data"]
    root = config["defaultPipelineRoot"]
    scheme = root.split("://", 1)[0]
    assert scheme in ("minio", "s3", "gs"), root
    providers = yaml.safe_load(config["providers"])
    assert set(providers) <= {"minio", "s3", "gs"}
    default = providers[scheme]["default"]
    credentials = default["credentials"]
    if not credentials.get("fromEnv"):
        keys = {"tokenKey"} if scheme == "gs" else {"accessKeyKey", "secretKeyKey"}
        assert {"secretName"} | keys <= set(credentials["secretRef"]), credentials
    if scheme != "gs":
        assert default["endpoint"] and object_store.parse_uri(root).bucket
    # No launcher ConfigMap where KFP provides one (multi-user: its profile controller) or
    # where the default root (KFP's MinIO) is the one meant.
    for entry in ("base", "overlays/kind", "overlays/multi-user"):
        assert not [o for o in _render(entry) if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "kfp-launcher"]


def test_kind_ports_reach_the_node_ports():
    cluster = yaml.safe_load((MANIFESTS / "kind" / "cluster.yaml").read_text())
    mapped = {m["containerPort"]: m["hostPort"] for n in cluster["nodes"] for m in n.get("extraPortMappings", [])}
    services = [o for o in _render("overlays/kind") if o["kind"] == "Service"]
    by_node_port = {p["nodePort"]: s["metadata"]["name"] for s in services for p in s["spec"]["ports"] if "nodePort" in p}
    cluster_mk = (MANIFESTS / "cluster.mk").read_text()
    node_ports = set(by_node_port) | {int(p) for p in re.findall(r'"nodePort":(\d+)', cluster_mk)}
    assert node_ports == set(mapped), (node_ports, mapped)
    assert mapped[30501] == 8501  # `make serve` posts to localhost:8501
    # ... through the inference logger, so what the host asks is what the skew monitor reads.
    assert by_node_port[30501] == "kubetfx-inference-logger"
    assert _one(services, "Service", "kubetfx-serving")["spec"].get("type", "ClusterIP") == "ClusterIP"
    assert not any(n.get("extraMounts") for n in cluster["nodes"])  # pods see only what a pod sees


def _claim(workload: dict, volume_name: str) -> str | None:
    volume = next(v for v in _pod_template(workload)["spec"]["volumes"] if v["name"] == volume_name)
    return volume.get("persistentVolumeClaim", {}).get("claimName")


def _parsed_args(objects, container: dict):
    """The container's arguments, $(VAR) expanded from the monitor ConfigMap as Kubernetes
    does, parsed by the CLI's own parser (SystemExit(2) on a flag the command lacks)."""
    from kubetfx.pipelines import cli

    assert container["command"] == ["python", "-m", "kubetfx.pipelines.cli"]
    config = _one(objects, "ConfigMap", "kubetfx-monitor")["data"]
    args = [re.sub(r"\$\((\w+)\)", lambda m: config[m.group(1)], a) for a in container["args"]]
    return cli.build_parser().parse_args(args)


def _model_config_file(container: dict) -> str:
    """TF Serving's --model_config_file, the only way a track names its model (TF Serving
    refuses it beside --model_name/--model_base_path)."""
    (path,) = [a.split("=", 1)[1] for a in container["args"] if a.startswith("--model_config_file=")]
    assert not [a for a in container["args"] if a.startswith(("--model_name", "--model_base_path"))]
    return path


def test_rollout_puts_the_splitting_logger_in_front_of_two_tf_serving_tracks():
    from kubetfx.pipelines.serving import logging_proxy

    objects = _render("overlays/rollout")
    logger = _one(objects, "Deployment", "kubetfx-inference-logger")
    logger_container = _pod_template(logger)["spec"]["containers"][0]
    parsed = _parsed_args(objects, logger_container)
    configs = logging_proxy.TrackConfigs(parsed.track_configs, parsed.model_name or parsed.serving_dir.rsplit("/", 1)[1],
                                         parsed.serving_dir)  # as the command builds it
    # The logger writes the track configs and reads rollout.json on the serving claim.
    serving_mount = next(m for m in logger_container["volumeMounts"] if m["mountPath"] == "/kubetfx/serving")
    assert _claim(logger, serving_mount["name"]) == "kubetfx-serving" and serving_mount.get("readOnly") is False
    assert parsed.track_configs.startswith("/kubetfx/serving/") and not parsed.rollout_dir
    upstreams = {"stable": parsed.upstream, "candidate": parsed.candidate_upstream}
    for track, name in (("stable", "kubetfx-serving"), ("candidate", "kubetfx-serving-candidate")):
        deployment = _one(objects, "Deployment", name)
        spec = _pod_template(deployment)["spec"]
        assert _pod_template(deployment)["metadata"]["labels"]["kubetfx.dev/track"] == track
        tf_serving = spec["containers"][0]
        # TF Serving loads the file the logger writes for its track, on the same claim, read-only.
        assert _model_config_file(tf_serving) == configs.path(track)
        mount = next(m for m in tf_serving["volumeMounts"] if configs.path(track).startswith(m["mountPath"] + "/"))
        assert mount["mountPath"] == "/kubetfx/serving" and mount["readOnly"] is True
        assert _claim(deployment, mount["name"]) == "kubetfx-serving"
        assert any(f"--model_config_file_poll_wait_seconds=" in a for a in tf_serving["args"])
        # ... and waits for it, bounded, before TF Serving starts (it exits without the file).
        (wait,) = spec["initContainers"]
        assert wait["command"][:2] == ["timeout", "600"] and configs.path(track) in wait["command"]
        # The logger's upstream for this track is the Service that selects this track's pods only.
        service = _one(objects, "Service", upstreams[track].split("//")[1].split(":")[0])
        assert service["spec"]["selector"] == {"app.kubernetes.io/name": "serving", "kubetfx.dev/track": track}
        port = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "http")
        assert upstreams[track] == f"http://{service['metadata']['name']}:{port}"
        # The readiness probe asks for the model the config names.
        assert tf_serving["readinessProbe"]["httpGet"]["path"] == f"/v1/models/{configs.model_name}"
    assert not [o for o in objects if "canary" in o["metadata"]["name"]]  # the replica-ratio canary is gone


def test_rollout_cron_job_runs_the_rule_where_the_logger_follows_the_state():
    from kubetfx.pipelines import exit_codes
    from kubetfx.pipelines.config import PipelineConfig
    from kubetfx.pipelines.serving import inference_log

    objects = _render("overlays/rollout")
    cron = _one(objects, "CronJob", "kubetfx-rollout")
    job, monitor = cron["spec"]["jobTemplate"]["spec"], _one(objects, "CronJob", "kubetfx-monitor")
    minute = cron["spec"]["schedule"].split()[0]
    assert re.fullmatch(r"\*/([1-9]|10)", minute), cron["spec"]["schedule"]  # every few minutes
    assert cron["spec"]["concurrencyPolicy"] == "Forbid" and cron["spec"]["startingDeadlineSeconds"] > 0
    assert 0 < job["activeDeadlineSeconds"] <= 60 * int(minute[2:]) * 2 and 0 <= job["backoffLimit"] <= 3
    assert job["ttlSecondsAfterFinished"] > 0 and job["template"]["spec"]["restartPolicy"] == "Never"
    spec, monitor_spec = job["template"]["spec"], monitor["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,), (monitor_container,) = spec["containers"], monitor_spec["containers"]
    # The monitor CronJob's image, securityContext and kind of service account (ours, no token).
    assert container["image"] == monitor_container["image"] == "kubetfx/pipeline:0.1.0"
    assert spec["securityContext"] == monitor_spec["securityContext"]
    assert container["securityContext"] == monitor_container["securityContext"]
    assert spec["serviceAccountName"] == "kubetfx-rollout" and spec["automountServiceAccountToken"] is False
    rules = job["podFailurePolicy"]["rules"]
    assert {c for r in rules if r["action"] == "FailJob" for c in r["onExitCodes"]["values"]} == {exit_codes.USAGE}
    parsed = _parsed_args(objects, container)
    assert parsed.command == "rollout" and parsed.auto and parsed.action is None
    # The config the CronJob reads is one the CLI loads (the rule's plan and budgets).
    config_mount = next(m for m in container["volumeMounts"] if parsed.config.startswith(m["mountPath"] + "/"))
    config_map = next(v["configMap"]["name"] for v in spec["volumes"] if v["name"] == config_mount["name"])
    text = _one(objects, "ConfigMap", config_map)["data"][parsed.config.rsplit("/", 1)[1]]
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        f.write(text)
        f.flush()
        loaded = PipelineConfig.from_yaml(f.name)
    assert loaded.rollout.mode == "staged" and loaded.name == parsed.name
    config = dataclasses.replace(loaded, home=parsed.home)
    # The rule writes rollout.json in its home's serving dir: the one the logger reads (same claim, same path) ...
    logger = _one(objects, "Deployment", "kubetfx-inference-logger")
    logger_args = _parsed_args(objects, _pod_template(logger)["spec"]["containers"][0])
    assert str(config.serving_dir) == logger_args.serving_dir
    mounts = {m["mountPath"]: _claim(cron, m["name"]) for m in container["volumeMounts"]}
    assert mounts["/kubetfx/serving"] == "kubetfx-serving" and mounts[parsed.home] == "kubetfx-rollout"
    assert not next(m for m in container["volumeMounts"] if m["mountPath"] == "/kubetfx/serving").get("readOnly")
    # ... and reads the inference log the logger writes (same claim, same path).
    assert str(inference_log.log_dir(config)) == logger_args.log_dir
