"""The Kubernetes manifests of k8s/, rendered per overlay as `kubectl apply -k` applies them.

kubectl (its built-in kustomize) renders them; where it is missing these tests skip,
naming it, except in CI, which must have it. `deploy/check_manifests.py` (`make lint`)
adds kubernetes-validate and checkov; the vendored custom-resource schemas are checked
here too, with the project's jsonschema.
"""

from __future__ import annotations

import ast
import copy
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
OVERLAYS = ("dev", "production")
RULES = ROOT / "monitoring" / "prometheus" / "rules.yml"
SECRETS_TEMPLATE = K8S / "secrets.template.yaml"
GUNICORN_CONF = ROOT / "app" / "gunicorn.conf.py"

UID = 10001  # the image's user (Dockerfile ARG UID)
# what the restricted Pod Security Standard and the issue ask of every container
HARDENED = {
    "runAsNonRoot": True,
    "runAsUser": UID,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
}
# where the service writes, with the root filesystem read-only (Dockerfile, docs/service.md)
WRITABLE = {"/tmp": "Memory", "/dev/shm": "Memory", "/var/lib/migraine": None}
# seconds between the end of gunicorn's graceful timeout and the kubelet's SIGKILL
GRACE_MARGIN = 5


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


check_manifests = _load("check_manifests", ROOT / "deploy" / "check_manifests.py")
k8s_monitoring = _load("k8s_monitoring", ROOT / "deploy" / "k8s_monitoring.py")


def kubectl() -> str:
    path = shutil.which("kubectl")
    if path:
        return path
    if os.environ.get("CI"):
        pytest.fail(f"kubectl missing: CI must install {check_manifests.KUBECTL_HINT}")
    pytest.skip(f"kubectl not installed ({check_manifests.KUBECTL_HINT})")


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    """Every overlay's documents, as `kubectl kustomize` renders them."""
    kubectl()
    return {
        overlay: check_manifests.documents(check_manifests.render(K8S / "overlays" / overlay))
        for overlay in OVERLAYS
    }


def of_kind(documents: list[dict], kind: str) -> list[dict]:
    return [document for document in documents if document["kind"] == kind]


def one(documents: list[dict], kind: str, name: str) -> dict:
    (found,) = [d for d in of_kind(documents, kind) if d["metadata"]["name"] == name]
    return found


def pod_spec(workload: dict) -> dict | None:
    """The pod template's spec of a workload, None for anything else."""
    spec = workload.get("spec", {})
    if workload["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}:
        return spec["template"]["spec"]
    if workload["kind"] == "CronJob":
        return spec["jobTemplate"]["spec"]["template"]["spec"]
    if workload["kind"] == "Pod":
        return spec
    return None


def workloads(documents: list[dict]) -> list[tuple[str, dict]]:
    return [
        (check_manifests.name_of(document), spec)
        for document in documents
        if (spec := pod_spec(document)) is not None
    ]


def containers(spec: dict) -> list[dict]:
    return spec.get("initContainers", []) + spec.get("containers", [])


def hardening_problems(name: str, spec: dict) -> list[str]:
    """What a pod spec lacks of the hardening every workload here must have."""
    problems = []
    if spec.get("automountServiceAccountToken") is not False:
        problems.append(f"{name}: automountServiceAccountToken is not false")
    pod_context = spec.get("securityContext", {})
    for key in ("runAsNonRoot", "runAsUser"):
        if pod_context.get(key) != HARDENED[key]:
            problems.append(f"{name}: pod securityContext.{key} is not {HARDENED[key]}")
    for container in containers(spec):
        where = f"{name} container {container.get('name')}"
        context = container.get("securityContext", {})
        for key, expected in HARDENED.items():
            if context.get(key) != expected:
                problems.append(
                    f"{where}: securityContext.{key} is {context.get(key)}, not {expected}"
                )
        if context.get("capabilities", {}).get("drop") != ["ALL"]:
            problems.append(f"{where}: securityContext.capabilities.drop is not [ALL]")
        if context.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problems.append(f"{where}: securityContext.seccompProfile.type is not RuntimeDefault")
        resources = container.get("resources", {})
        for bound in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if resource not in resources.get(bound, {}):
                    problems.append(f"{where}: no resources.{bound}.{resource}")
    return problems


def hardened_deployment() -> dict:
    """A Deployment with everything hardening_problems asks for."""
    context = {
        **HARDENED,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    container = {
        "name": "api",
        "image": "migraine-mlops",
        "securityContext": context,
        "resources": {
            "requests": {"cpu": "1", "memory": "1Gi"},
            "limits": {"cpu": "2", "memory": "2Gi"},
        },
    }
    spec = {
        "automountServiceAccountToken": False,
        "securityContext": {"runAsNonRoot": True, "runAsUser": UID},
        "containers": [container],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "api"},
        "spec": {"template": {"spec": spec}},
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_workload_is_hardened(rendered, overlay):
    found = workloads(rendered[overlay])
    # the api, the retrain dispatch; dev adds PostgreSQL and MLflow
    assert len(found) == {"dev": 4, "production": 2}[overlay]
    assert [p for name, spec in found for p in hardening_problems(name, spec)] == []


def test_the_hardening_check_passes_a_hardened_deployment():
    deployment = hardened_deployment()
    assert hardening_problems("Deployment/api", pod_spec(deployment)) == []


@pytest.mark.parametrize("key", sorted(HARDENED))
def test_the_hardening_check_reports_each_missing_field(key):
    deployment = hardened_deployment()
    del pod_spec(deployment)["containers"][0]["securityContext"][key]
    problems = hardening_problems("Deployment/api", pod_spec(deployment))
    assert problems == [
        f"Deployment/api container api: securityContext.{key} is None, not {HARDENED[key]}"
    ]


def test_the_hardening_check_reports_an_unhardened_init_container():
    deployment = hardened_deployment()
    pod_spec(deployment)["initContainers"] = [{"name": "migrate", "image": "migraine-mlops"}]
    problems = hardening_problems("Deployment/api", pod_spec(deployment))
    unhardened = "Deployment/api container migrate: securityContext.runAsNonRoot is None, not True"
    assert unhardened in problems
    assert "Deployment/api container migrate: no resources.limits.memory" in problems
    assert all("container migrate" in problem for problem in problems)


def test_the_hardening_check_reports_a_bare_deployment():
    bare = {"kind": "Deployment", "spec": {"template": {"spec": {"containers": [{"name": "a"}]}}}}
    problems = hardening_problems("Deployment/bare", pod_spec(bare))
    assert "Deployment/bare: automountServiceAccountToken is not false" in problems
    assert "Deployment/bare container a: securityContext.capabilities.drop is not [ALL]" in problems
    # the pod's token and user (3), then the container's context, capabilities, seccomp
    # profile and its four resource bounds
    assert len(problems) == 3 + len(HARDENED) + 2 + 4


def api_container(documents: list[dict]) -> dict:
    (container,) = pod_spec(one(documents, "Deployment", "api"))["containers"]
    return container


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_api_has_startup_liveness_and_readiness_probes(rendered, overlay):
    container = api_container(rendered[overlay])
    paths = {
        probe: container[probe]["httpGet"]["path"]
        for probe in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert paths == {
        "startupProbe": "/health",
        "livenessProbe": "/health",
        "readinessProbe": "/ready",
    }
    startup = container["startupProbe"]
    # models load and verify before the workers answer: 8-16 s here, far more on a busy node
    assert 60 <= startup["periodSeconds"] * startup["failureThreshold"] <= 300
    port = {p["name"]: p["containerPort"] for p in container["ports"]}["http"]
    settings = one(rendered[overlay], "ConfigMap", api_settings_name(rendered[overlay]))["data"]
    assert int(settings["MIGRAINE_PORT"]) == port


def api_settings_name(documents: list[dict]) -> str:
    (name,) = [
        d["metadata"]["name"]
        for d in of_kind(documents, "ConfigMap")
        if d["metadata"]["name"].startswith("api-settings")
    ]
    return name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_api_writes_only_to_empty_dirs(rendered, overlay):
    spec = pod_spec(one(rendered[overlay], "Deployment", "api"))
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    container_mounts = api_container(rendered[overlay])["volumeMounts"]
    mounts = {m["mountPath"]: volumes[m["name"]] for m in container_mounts}
    writable = {m["mountPath"] for m in container_mounts if not m.get("readOnly")}
    assert writable == set(WRITABLE)
    # the one read-only mount: the Secret's files (MIGRAINE_API_KEYS_FILE, ..._LOG_FILE)
    assert {p: v["secret"]["secretName"] for p, v in mounts.items() if p not in WRITABLE} == {
        "/var/run/secrets/migraine": "migraine-secrets"
    }
    for path, medium in WRITABLE.items():
        assert "emptyDir" in mounts[path], path
        assert mounts[path]["emptyDir"].get("medium") == medium, path
        assert "sizeLimit" in mounts[path]["emptyDir"], path


def graceful_timeout() -> int:
    """gunicorn's graceful_timeout, as app/gunicorn.conf.py sets it."""
    for node in ast.parse(GUNICORN_CONF.read_text()).body:
        names = [getattr(target, "id", None) for target in getattr(node, "targets", [])]
        if names == ["graceful_timeout"]:
            return node.value.value
    raise AssertionError(f"{GUNICORN_CONF} sets no graceful_timeout")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_grace_period_covers_the_prestop_sleep_and_gunicorns_graceful_timeout(
    rendered, overlay
):
    container = api_container(rendered[overlay])
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep", command
    sleep = int(command[1])
    assert sleep >= 3  # endpoints and the ingress need a few seconds to stop routing here
    grace = pod_spec(one(rendered[overlay], "Deployment", "api"))["terminationGracePeriodSeconds"]
    assert grace >= sleep + graceful_timeout() + GRACE_MARGIN


def autoscaler_minimum(documents: list[dict]) -> int:
    """The api's replica floor; exactly one autoscaler may own the Deployment."""
    hpas = [d for d in of_kind(documents, "HorizontalPodAutoscaler") if targets_api(d)]
    scaled = [d for d in of_kind(documents, "ScaledObject") if targets_api(d)]
    assert len(hpas) + len(scaled) == 1, "two autoscalers on the api fight (KEDA makes its own HPA)"
    return hpas[0]["spec"]["minReplicas"] if hpas else scaled[0]["spec"]["minReplicaCount"]


def targets_api(autoscaler: dict) -> bool:
    target = autoscaler["spec"]["scaleTargetRef"]
    return target.get("kind", "Deployment") == "Deployment" and target["name"] == "api"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_disruption_budget_stays_below_the_autoscalers_minimum(rendered, overlay):
    budget = one(rendered[overlay], "PodDisruptionBudget", "api")["spec"]["minAvailable"]
    assert 1 <= budget < autoscaler_minimum(rendered[overlay])


def test_production_scales_with_keda_and_dev_with_the_plain_hpa(rendered):
    assert of_kind(rendered["production"], "HorizontalPodAutoscaler") == []
    (scaled,) = of_kind(rendered["production"], "ScaledObject")
    assert {t["type"] for t in scaled["spec"]["triggers"]} == {"prometheus", "cpu", "memory"}
    assert of_kind(rendered["dev"], "ScaledObject") == []
    (hpa,) = of_kind(rendered["dev"], "HorizontalPodAutoscaler")
    targets = {m["resource"]["name"]: m["resource"]["target"] for m in hpa["spec"]["metrics"]}
    assert targets["cpu"]["averageUtilization"] == 70
    assert targets["memory"]["averageUtilization"] == 80
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 60


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_deny_everything_not_allowed(rendered, overlay):
    policies = {
        p["metadata"]["name"]: p["spec"] for p in of_kind(rendered[overlay], "NetworkPolicy")
    }
    assert policies["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    egress_ports = {
        port["port"]
        for spec in policies.values()
        for rule in spec.get("egress", [])
        for port in rule.get("ports", [])
    }
    assert egress_ports == {53, 5432, 443}  # DNS, the prediction log, GitHub's API


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_namespaced_resource_is_in_the_migraine_namespace(rendered, overlay):
    # a dev overlay without `namespace:` once put its PostgreSQL in `default` (checkov saw it)
    cluster_scoped = {"Namespace"}
    outside = [
        check_manifests.name_of(d)
        for d in rendered[overlay]
        if d["kind"] not in cluster_scoped and d["metadata"].get("namespace") != "migraine"
    ]
    assert outside == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_prometheus_rule_is_rules_yml(rendered, overlay):
    rule = one(rendered[overlay], "PrometheusRule", "migraine")
    assert rule["spec"] == yaml.safe_load(RULES.read_text())


def test_the_committed_prometheus_rule_is_fresh():
    assert k8s_monitoring.OUT.read_text() == k8s_monitoring.render(RULES.read_text())


def test_a_rule_change_makes_the_prometheus_rule_stale():
    changed = RULES.read_text().replace("for: 30s", "for: 45s", 1)
    assert changed != RULES.read_text()
    assert k8s_monitoring.render(changed) != k8s_monitoring.OUT.read_text()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_prometheus_scrapes_the_api_as_job_migraine(rendered, overlay):
    # rules.yml names job="migraine"; the ServiceMonitor takes the job from a Service label
    monitor = one(rendered[overlay], "ServiceMonitor", "migraine")["spec"]
    service = one(rendered[overlay], "Service", "api")
    assert service["metadata"]["labels"][monitor["jobLabel"]] == "migraine"
    selector = monitor["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}


def secret_values(documents: list[dict]) -> dict[str, str]:
    return {
        f"{d['metadata']['name']}.{key}": value
        for d in of_kind(documents, "Secret")
        for field in ("data", "stringData")
        for key, value in (d.get(field) or {}).items()
    }


def test_no_secret_holds_a_value(rendered):
    template = check_manifests.documents(SECRETS_TEMPLATE.read_text())
    keys = secret_values(template)
    assert len(keys) == 4
    assert {key: value for key, value in keys.items() if value != ""} == {}
    for overlay in OVERLAYS:
        assert {k: v for k, v in secret_values(rendered[overlay]).items() if v != ""} == {}


def test_every_secret_the_workloads_read_is_in_the_template(rendered):
    template = {
        d["metadata"]["name"]: d["stringData"]
        for d in check_manifests.documents(SECRETS_TEMPLATE.read_text())
    }
    for overlay in OVERLAYS:
        for _, spec in workloads(rendered[overlay]):
            for container in containers(spec):
                for variable in container.get("env", []):
                    ref = variable.get("valueFrom", {}).get("secretKeyRef")
                    if ref:
                        assert ref["key"] in template[ref["name"]], ref
            for volume in spec.get("volumes", []):
                if "secret" in volume:
                    keys = {item["key"] for item in volume["secret"]["items"]}
                    assert keys <= set(template[volume["secret"]["secretName"]])


def test_no_secret_reaches_an_environment(rendered):
    for overlay in OVERLAYS:
        found = {
            (container["name"], variable["name"])
            for _, spec in workloads(rendered[overlay])
            for container in containers(spec)
            for variable in container.get("env", [])
            if "secretKeyRef" in variable.get("valueFrom", {})
        }
        assert found == set()  # secrets are files: MIGRAINE_<NAME>_FILE
        for _, spec in workloads(rendered[overlay]):
            for container in containers(spec):
                assert all("secretRef" not in source for source in container.get("envFrom", []))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_custom_resources_match_their_vendored_schemas(rendered, overlay):
    custom = [d for d in rendered[overlay] if check_manifests.is_custom(d)]
    assert {d["kind"] for d in custom} >= {"ServiceMonitor", "PrometheusRule"}
    assert [p for d in custom for p in check_manifests.custom_resource_problems(d)] == []


def test_the_vendored_schemas_catch_a_misspelt_field(rendered):
    monitor = copy.deepcopy(one(rendered["production"], "ServiceMonitor", "migraine"))
    monitor["spec"]["endpoints"][0]["intervall"] = "15s"
    (problem,) = check_manifests.custom_resource_problems(monitor)
    assert "spec.endpoints.0" in problem and "'intervall' was unexpected" in problem


def test_the_vendored_schemas_want_keda_metadata_as_strings(rendered):
    scaled = copy.deepcopy(one(rendered["production"], "ScaledObject", "api"))
    scaled["spec"]["triggers"][0]["metadata"]["threshold"] = 300
    (problem,) = check_manifests.custom_resource_problems(scaled)
    assert "300 is not of type 'string'" in problem


def test_a_rule_with_both_alert_and_record_breaks_its_schema(rendered):
    rule = copy.deepcopy(one(rendered["production"], "PrometheusRule", "migraine"))
    rule["spec"]["groups"][0]["rules"][0]["alert"] = "Both"
    assert check_manifests.custom_resource_problems(rule) != []


def test_the_retrain_dispatch_runs_one_at_a_time_and_only_in_production(rendered):
    for overlay, suspended in (("dev", True), ("production", False)):
        cron = one(rendered[overlay], "CronJob", "retrain-dispatch")["spec"]
        assert cron["concurrencyPolicy"] == "Forbid"
        assert cron["suspend"] is suspended


class GitHub(BaseHTTPRequestHandler):
    """GitHub's workflow_dispatch endpoint: records the request, answers `status`."""

    status: ClassVar[int] = 204
    requests: ClassVar[list[dict]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        GitHub.requests.append(
            {"path": self.path, "headers": dict(self.headers), "body": json.loads(body)}
        )
        self.send_response(GitHub.status)
        self.end_headers()
        if GitHub.status != 204:
            self.wfile.write(b'{"message": "Bad credentials"}')

    def log_message(self, *args):
        pass


@pytest.fixture
def github(tmp_path):
    GitHub.requests, GitHub.status = [], 204
    server = ThreadingHTTPServer(("127.0.0.1", 0), GitHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def run_dispatch(rendered, api_url: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """The production CronJob's command, with its ConfigMap and token, against api_url."""
    documents = rendered["production"]
    (container,) = pod_spec(one(documents, "CronJob", "retrain-dispatch"))["containers"]
    assert container["command"][:2] == ["python", "-c"]
    (source,) = container["envFrom"]
    environment = one(documents, "ConfigMap", source["configMapRef"]["name"])["data"]
    token = tmp_path / "token"
    token.write_text("ghp_example\n")
    env = {
        **environment,
        "GITHUB_API_URL": api_url,
        "GITHUB_TOKEN_FILE": str(token),
        "PATH": os.environ["PATH"],
    }
    return subprocess.run(
        [sys.executable, "-c", container["command"][2]],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_the_retrain_dispatch_asks_github_to_run_retrain_yaml(rendered, github, tmp_path):
    result = run_dispatch(rendered, github, tmp_path)
    assert result.returncode == 0, result.stderr
    (request,) = GitHub.requests
    assert request["path"] == (
        "/repos/migraine-mlops/migraine-mlops/actions/workflows/retrain.yaml/dispatches"
    )
    assert request["body"] == {"ref": "main"}
    assert request["headers"]["Authorization"] == "Bearer ghp_example"
    assert request["headers"]["Accept"] == "application/vnd.github+json"
    assert "HTTP 204" in result.stdout
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "retrain.yaml").read_text())
    assert "workflow_dispatch" in workflow[True]  # YAML 1.1 reads the key `on` as true


def test_a_refused_dispatch_fails_the_job(rendered, github, tmp_path):
    GitHub.status = 401
    result = run_dispatch(rendered, github, tmp_path)
    assert result.returncode == 1
    assert "GitHub refused the dispatch: HTTP 401" in result.stderr
    assert "Bad credentials" in result.stderr


def test_every_checkov_skip_names_a_check_and_its_reason():
    skips = check_manifests.load_skips()
    assert set(skips) == {"kubernetes", "dockerfile"}
    for checks in skips.values():
        for check_id, reason in checks.items():
            assert re.fullmatch(r"CKV2?_(K8S|DOCKER)_\d+", check_id)
            assert len(reason.split()) >= 20, check_id  # a reason, not a label


def test_a_checkov_skip_without_a_reason_is_refused(tmp_path, monkeypatch):
    skips = tmp_path / "checkov-skips.yaml"
    skips.write_text("kubernetes:\n  CKV_K8S_43:\n")
    monkeypatch.setattr(check_manifests, "SKIPS", skips)
    with pytest.raises(ValueError, match="kubernetes CKV_K8S_43 has no reason"):
        check_manifests.load_skips()
