"""deploy/compose.yaml against the Compose Specification's JSON schema (vendored in check-jsonschema), and
every service, port, file and PERSONALIZE_* setting it names against the project. No container runs."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from engine.ops.settings import Settings
from tests.deploy.support import DEPLOY, check_settings, cli_commands, dockerfile_env, kafka_version, tool

COMPOSE = DEPLOY / "compose.yaml"
_VARIABLE = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def _interpolate(value: str) -> str:
    """Compose's ``${VAR:-default}`` with nothing set in the shell: the default, or empty."""
    return _VARIABLE.sub(lambda m: m.group(2) or "", value)


def _engine_services() -> dict[str, dict[str, Any]]:
    """Services running the engine's image (built from deploy/Dockerfile)."""
    services: dict[str, dict[str, Any]] = _compose()["services"]
    return {
        name: s for name, s in services.items() if s.get("build", {}).get("dockerfile") == "deploy/Dockerfile"
    }


def _environment(service: dict[str, Any]) -> dict[str, str]:
    """What the container's process sees: the image's ENV, then the service's environment."""
    env = dockerfile_env()
    env.update({k: _interpolate(str(v)) for k, v in service.get("environment", {}).items()})
    return env


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Where each of the service's volumes is mounted: target -> source (a file, folder or volume)."""
    return {mount.split(":")[1]: mount.split(":")[0] for mount in service.get("volumes", [])}


def _settings(service: dict[str, Any]) -> Settings:
    return check_settings(_environment(service))


def test_valid_against_the_compose_specification() -> None:
    done = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_personalize_variable_is_a_setting_and_every_engine_service_starts_with_its_settings() -> None:
    fields = {f"PERSONALIZE_{name.upper()}" for name in Settings.model_fields}
    named = set(re.findall(r"\bPERSONALIZE_\w+", COMPOSE.read_text()))
    assert named and named <= fields, f"not settings: {sorted(named - fields)}"
    for name, service in _engine_services().items():
        settings = _settings(service)  # raises on an unknown key or a bad value, as the process would
        assert settings.bootstrap == "kafka:9092", name
        assert urlsplit(settings.redis).hostname == "redis", name
        assert settings.partitions == 12, name


def test_the_engine_services_run_real_commands_of_one_image() -> None:
    services = _engine_services()
    assert set(services) == {"worker-1", "worker-2", "api", "dashboard"}
    commands = cli_commands()
    for name, service in services.items():
        assert service["command"][0] in commands, name
        build = service["build"]
        assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
    assert {s["image"] for s in services.values()} == {"personalize:latest"}


def test_two_workers_with_their_own_identity_and_checkpoints() -> None:
    workers = {n: s for n, s in _engine_services().items() if s["command"] == ["worker"]}
    assert len(workers) == 2
    assert len({s["hostname"] for s in workers.values()}) == 2
    volumes = set()
    for name, service in workers.items():
        folder = str(_settings(service).checkpoint_dir)
        mounted = _mounts(service)
        assert folder in mounted, f"{name}: checkpoints in {folder} are not on a volume"
        volumes.add(mounted[folder])
    assert len(volumes) == 2 and volumes <= set(_compose()["volumes"])


def test_kafka_is_the_official_image_of_the_stacks_version_in_kraft_mode() -> None:
    kafka = _compose()["services"]["kafka"]
    assert kafka["image"] == f"apache/kafka:{kafka_version()}"
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "9092" in env["KAFKA_ADVERTISED_LISTENERS"] and env["KAFKA_ADVERTISED_LISTENERS"].startswith(
        "PLAINTEXT://kafka:"
    )
    assert env["KAFKA_NUM_PARTITIONS"] == "12"


def test_redis_persists_with_an_append_only_file_on_a_volume() -> None:
    redis = _compose()["services"]["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert any(m.endswith(":/data") for m in redis["volumes"])


def test_published_ports_and_dependencies_exist() -> None:
    compose = _compose()
    services = compose["services"]
    for name, service in _engine_services().items():
        settings = _settings(service)
        for mapping in service.get("ports", []):
            container = int(str(mapping).split(":")[-1])
            expected = {"api": settings.api_port, "dashboard": settings.dashboard_port}[service["command"][0]]
            assert container == expected, f"{name} publishes {container}, serves {expected}"
    for name, service in services.items():
        depends = service.get("depends_on", [])
        assert set(depends) <= set(services), f"{name} depends on a service that does not exist"
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE.parent / source).exists(), f"{name} mounts {source}: missing"
            else:
                assert source in compose["volumes"], f"{name} mounts undeclared volume {source}"


def test_prometheus_scrapes_every_worker_and_the_api_and_loads_the_rules(tmp_path: Path) -> None:
    services = _compose()["services"]
    mounts = _mounts(services["prometheus"])
    config_file = mounts["/etc/prometheus/prometheus.yml"]
    rules_file = mounts["/etc/prometheus/personalize.rules.yml"]
    # Lay the files out as the container sees them, so promtool checks the rule file reference too.
    shutil.copy(COMPOSE.parent / config_file, tmp_path / "prometheus.yml")
    shutil.copy(COMPOSE.parent / rules_file, tmp_path / "personalize.rules.yml")
    done = subprocess.run(
        [tool("promtool"), "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and "SUCCESS" in done.stdout + done.stderr, done.stdout + done.stderr
    config = yaml.safe_load((tmp_path / "prometheus.yml").read_text())
    targets = {
        job["job_name"]: {t for group in job["static_configs"] for t in group["targets"]}
        for job in config["scrape_configs"]
    }
    engine = _engine_services()
    workers = {f"{n}:{_settings(s).metrics_port}" for n, s in engine.items() if s["command"] == ["worker"]}
    assert targets["personalize-worker"] == workers
    assert targets["personalize-api"] == {f"api:{_settings(engine['api']).api_port}"}
    dashboard = engine["dashboard"]["command"]
    urls = {dashboard[i + 1] for i, arg in enumerate(dashboard) if arg == "--metrics-url"}
    assert urls == {f"http://{target}/metrics" for target in workers}


def test_grafana_gets_the_projects_dashboard_wired_to_this_prometheus() -> None:
    grafana = _compose()["services"]["grafana"]
    mounts = _mounts(grafana)
    datasource_file = mounts["/etc/grafana/provisioning/datasources/prometheus.yml"]
    provider_file = mounts["/etc/grafana/provisioning/dashboards/personalize.yml"]
    datasources = yaml.safe_load((COMPOSE.parent / datasource_file).read_text())["datasources"]
    assert [d["url"] for d in datasources] == ["http://prometheus:9090"]
    provider = yaml.safe_load((COMPOSE.parent / provider_file).read_text())["providers"][0]
    board_folder = COMPOSE.parent / mounts[provider["options"]["path"]]
    boards = [json.loads(p.read_text()) for p in sorted(board_folder.glob("*.json"))]
    assert boards, "no dashboard mounted where the provider looks"
    uids = {p["datasource"]["uid"] for b in boards for p in b["panels"] if "datasource" in p}
    assert uids == {d["uid"] for d in datasources}
