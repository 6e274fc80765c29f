"""The local stack: a one-node Apache Kafka (KRaft) and a redis-server on loopback, for dev and tests.

Kafka's official jars come from Maven Central through ``deploy/kafka/pom.xml``. State lives under
``settings.stack_dir``; `down` stops exactly the processes `up` started (pid files, checked against the
process command line). Process management is synchronous on purpose: it runs from the CLI only.
"""

from __future__ import annotations

__all__ = ["Service", "ServiceStatus", "down", "start", "status", "stop", "stop_workers", "up"]

import base64
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from engine.ops import workers
from engine.ops.settings import Settings
from schemas.errors import ServiceUnavailableError, StackError

POM = Path(__file__).resolve().parents[2] / "deploy" / "kafka" / "pom.xml"
LOG4J = POM.with_name("log4j2.properties")


class Service(StrEnum):
    KAFKA = "kafka"
    REDIS = "redis"
    WORKER = "worker"


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    service: Service
    running: bool
    pid: int | None
    address: str
    log: Path

    def to_json(self) -> dict[str, object]:
        """>>> ServiceStatus(Service.REDIS, True, 7, "127.0.0.1:16379", Path("r.log")).to_json()["service"]
        'redis'
        """
        return {
            "service": self.service.value,
            "running": self.running,
            "pid": self.pid,
            "address": self.address,
            "log": str(self.log),
        }


def kafka_version() -> str:
    """The Kafka version pinned in the POM."""
    match = re.search(r"<kafka.version>([^<]+)</kafka.version>", POM.read_text())
    if match is None:
        raise StackError(f"no <kafka.version> in {POM}")
    return match.group(1)


def _dir(settings: Settings, service: Service) -> Path:
    return (settings.stack_dir / service.value).resolve()


def _pid_file(settings: Settings, service: Service) -> Path:
    return _dir(settings, service) / "pid"


def _running_pid(settings: Settings, service: Service) -> int | None:
    pid_file = _pid_file(settings, service)
    try:
        pid = int(pid_file.read_text().strip())
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        return None
    # Our services run in their own folder (redis-server rewrites its title, so not the command line):
    # a pid reused by another process has another working directory.
    if Path(cwd) != _dir(settings, service):
        return None
    return pid


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait(what: str, address: str, ready: Callable[[], bool], timeout_s: float, pid: int | None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ready():
            return
        if pid is not None and not Path(f"/proc/{pid}").exists():
            raise StackError(f"{what} exited during start-up; see its log under the stack folder")
        time.sleep(0.3)
    raise ServiceUnavailableError(what, address, timeout_s)


# -- Kafka -------------------------------------------------------------------------------------


def _fetch_kafka_jars(libs: Path, log: Callable[[str], None]) -> None:
    done = libs / f".complete-{kafka_version()}"
    if done.exists():
        return
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError("Maven (mvn) is needed to fetch the Kafka jars; install it (apt-get install maven)")
    log(f"fetching Apache Kafka {kafka_version()} jars from Maven Central (once)")
    if libs.exists():
        shutil.rmtree(libs)
    cmd = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(POM),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={libs}",
        "-DincludeScope=runtime",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise StackError(
            f"maven could not fetch the Kafka jars:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )
    done.touch()


def _kafka_config(settings: Settings, home: Path) -> Path:
    data = home / "data"
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{settings.kafka_controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{settings.kafka_port},"
        f"CONTROLLER://127.0.0.1:{settings.kafka_controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{settings.kafka_port}",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(data),
        "num.partitions": str(settings.partitions),
        "auto.create.topics.enable": "false",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "8",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "log.retention.hours": "72",
    }
    path = home / "server.properties"
    path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
    return path


def _cluster_id() -> str:
    """A random Kafka cluster id (a UUID in URL-safe base64) that does not start with ``-``: the storage
    tool would read such an id as an option and refuse to format (1 start in 64 failed so).

    >>> all(not _cluster_id().startswith("-") and len(_cluster_id()) == 22 for _ in range(500))
    True
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _start_kafka(settings: Settings, log: Callable[[str], None]) -> int:
    java = shutil.which("java")
    if java is None:
        raise StackError("Java 17+ is needed for Kafka; install it (apt-get install openjdk-17-jre-headless)")
    home = _dir(settings, Service.KAFKA)
    libs = home / "libs"
    _fetch_kafka_jars(libs, log)
    config = _kafka_config(settings, home)
    classpath = f"{libs}/*"
    if not (home / "data" / "meta.properties").exists():
        cluster_id = _cluster_id()
        fmt = [
            java,
            "-cp",
            classpath,
            "kafka.tools.StorageTool",
            "format",
            "-t",
            cluster_id,
            "-c",
            str(config),
        ]
        result = subprocess.run(fmt, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise StackError(f"could not format Kafka storage: {result.stdout}{result.stderr}")
    (home / "logs").mkdir(exist_ok=True)
    cmd = [
        java,
        f"-Xmx{settings.kafka_heap}",
        "-Xms128m",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dkafka.logs.dir={home / 'logs'}",
        f"-Dlog4j2.configurationFile={LOG4J}",
        "-cp",
        classpath,
        "kafka.Kafka",
        str(config),
    ]
    return _spawn(cmd, home, home / "logs" / "stdout.log")


def _kafka_ready(settings: Settings) -> bool:
    if not _port_open(settings.kafka_port):
        return False
    from confluent_kafka.admin import AdminClient

    try:
        AdminClient({"bootstrap.servers": settings.bootstrap}).list_topics(timeout=2)
    except Exception:  # noqa: BLE001 - any failure means "not ready yet"
        return False
    return True


# -- Redis -------------------------------------------------------------------------------------


def _start_redis(settings: Settings) -> int:
    server = shutil.which("redis-server")
    if server is None:
        raise StackError(
            "redis-server not found on PATH; `make install` installs it (apt-get install redis-server)"
        )
    home = _dir(settings, Service.REDIS)
    (home / "users.acl").touch()  # redis-server refuses to start with an aclfile that does not exist
    cmd = [server, "--port", str(settings.redis_port), "--bind", "127.0.0.1", "--dir", str(home)]
    # Every write goes to the append-only file (fsynced each second, in the background): a restart
    # keeps the lists, preferences, consent and tombstones (docs/reliability.md); no RDB snapshots.
    cmd += ["--save", "", "--appendonly", "yes", "--appendfsync", "everysec"]
    cmd += ["--daemonize", "no", "--protected-mode", "yes", "--logfile", str(home / "redis.log")]
    # Hashes whose values fit 256 B (an item's metadata: categories and tags as JSON arrays) stay in
    # the compact listpack encoding, which the default 64 B would give up on for long tag lists.
    cmd += ["--hash-max-listpack-value", "256"]
    # Tenants' ACL users (`personalize tenant add`) are kept here by ACL SAVE, so a restart keeps them.
    cmd += ["--aclfile", str(home / "users.acl")]
    return _spawn(cmd, home, home / "stdout.log")


def _redis_ready(settings: Settings) -> bool:
    if not _port_open(settings.redis_port):
        return False
    import redis

    try:
        return bool(redis.Redis(host="127.0.0.1", port=settings.redis_port, socket_timeout=1).ping())
    except redis.RedisError:
        return False


# -- lifecycle -----------------------------------------------------------------------------------


#: Services this process started and has not reaped: their `Popen` must not be collected while they run.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def _spawn(cmd: list[str], cwd: Path, output: Path) -> int:
    with output.open("ab") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    _CHILDREN[proc.pid] = proc
    return proc.pid


def up(
    settings: Settings, log: Callable[[str], None] = print, timeout_s: float = 120.0
) -> list[ServiceStatus]:
    """Start whatever is not running yet and wait until both services answer (idempotent)."""
    for service in (Service.REDIS, Service.KAFKA):
        start(settings, service, log, timeout_s)
    return status(settings)


def start(
    settings: Settings, service: Service, log: Callable[[str], None] = print, timeout_s: float = 120.0
) -> int:
    """Start one service (Kafka or Redis) unless it runs already, wait until it answers; its pid."""
    port = settings.redis_port if service is Service.REDIS else settings.kafka_port
    _dir(settings, service).mkdir(parents=True, exist_ok=True)
    pid = _running_pid(settings, service)
    if pid is None:
        if _port_open(port):
            raise StackError(
                f"port {port} is taken by a process that is not ours; free it or change "
                f"PERSONALIZE_{service.value.upper()}_PORT"
            )
        pid = _start_redis(settings) if service is Service.REDIS else _start_kafka(settings, log)
        _pid_file(settings, service).write_text(f"{pid}\n")
        log(f"started {service.value} (pid {pid})")
    ready = (lambda: _redis_ready(settings)) if service is Service.REDIS else (lambda: _kafka_ready(settings))
    _wait(service.value, f"127.0.0.1:{port}", ready, timeout_s, pid)
    return pid


def stop(settings: Settings, service: Service, timeout_s: float = 30.0) -> int | None:
    """Stop one service that `start` (or `up`) started under ``settings.stack_dir`` (SIGTERM, then
    SIGKILL after ``timeout_s``); its pid, or None when it was not running. Nothing else is touched."""
    pid = _running_pid(settings, service)
    if pid is not None:
        _stop(pid, timeout_s)
    _pid_file(settings, service).unlink(missing_ok=True)
    return pid


def down(settings: Settings, log: Callable[[str], None] = print, timeout_s: float = 30.0) -> None:
    """Stop the workers that registered here, then Kafka and Redis started by `up`; nothing else."""
    for pid in workers.running(settings):
        _stop(pid, timeout_s)
        log(f"stopped worker (pid {pid})")
    workers.forget_all(settings)
    for service in (Service.KAFKA, Service.REDIS):
        service_pid = stop(settings, service, timeout_s)
        if service_pid is not None:
            log(f"stopped {service.value} (pid {service_pid})")


def stop_workers(
    settings: Settings, log: Callable[[str], None] = print, timeout_s: float = 30.0
) -> list[int]:
    """Stop the workers of ``settings.namespace`` registered on this machine (Kafka, Redis and other
    namespaces' workers keep running); returns their pids."""
    stopped = [e.pid for e in workers.entries(settings) if e.namespace == settings.namespace]
    for pid in stopped:
        _stop(pid, timeout_s)
        log(f"stopped worker (pid {pid})")
    return stopped


def _stop(pid: int, timeout_s: float) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.2)
    if Path(f"/proc/{pid}").exists():
        os.kill(pid, signal.SIGKILL)
        _reap(pid)


def _reap(pid: int) -> None:
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is not None:
            del _CHILDREN[pid]
        return
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def status(settings: Settings) -> list[ServiceStatus]:
    out = []
    for service, port, log in (
        (Service.KAFKA, settings.kafka_port, _dir(settings, Service.KAFKA) / "logs" / "server.log"),
        (Service.REDIS, settings.redis_port, _dir(settings, Service.REDIS) / "redis.log"),
    ):
        pid = _running_pid(settings, service)
        out.append(ServiceStatus(service, pid is not None, pid, f"127.0.0.1:{port}", log))
    for pid in workers.running(settings):
        out.append(
            ServiceStatus(
                Service.WORKER,
                True,
                pid,
                f"{settings.bootstrap} -> {settings.redis}",
                workers.log_path(settings),
            )
        )
    return out
