"""deploy/Dockerfile and .dockerignore, checked without a container engine (none runs here): hadolint,
every COPY source exists and is in the build context, the entrypoint is the console script with a real
command, the image's settings load, the warm-up is the Makefile's. What needs a real build: docs/deploy.md.
"""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path

from tests.deploy.support import DEPLOY, REPO, check_settings, cli_commands, dockerfile, dockerfile_env, tool


def _ignored(path: str, patterns: list[str]) -> bool:
    """Whether Docker leaves ``path`` out of the build context: the last pattern matching it or one of
    its parent folders decides (``!`` re-includes); ``**`` spans folders, ``*`` stays within one."""
    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for raw in patterns:
        negated = raw.startswith("!")
        pattern = raw[1:] if negated else raw
        regex = "".join(
            ".*" if tok == "**" else "[^/]*" if tok == "*" else "[^/]" if tok == "?" else re.escape(tok)
            for tok in re.findall(r"\*\*|\*|\?|[^*?]+", pattern.rstrip("/"))
        )
        if any(re.fullmatch(regex, c) for c in candidates):
            excluded = not negated
    return excluded


def _dockerignore() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _copies() -> list[tuple[list[str], str]]:
    """(sources, destination) of every COPY from the build context (not ``--from`` another stage)."""
    found = []
    for keyword, rest in dockerfile():
        if keyword == "COPY" and "--from=" not in rest:
            words = [w for w in rest.split() if not w.startswith("--")]
            found.append((words[:-1], words[-1]))
    return found


def test_hadolint_finds_nothing() -> None:
    done = subprocess.run(
        [tool("hadolint"), "--no-color", str(DEPLOY / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


def test_every_copy_source_exists_and_is_in_the_build_context() -> None:
    patterns = _dockerignore()
    sources = [s for srcs, _ in _copies() for s in srcs]
    assert {"pyproject.toml", "README.md", "schemas", "models", "engine", "streams"} <= set(sources)
    for source in sources:
        assert (REPO / source).exists(), f"COPY {source}: no such file in the repository"
        assert not _ignored(source, patterns), f"COPY {source}: .dockerignore leaves it out of the context"
        for file in (REPO / source).rglob("*.py") if (REPO / source).is_dir() else []:
            relative = file.relative_to(REPO).as_posix()
            if "__pycache__" not in relative:
                assert not _ignored(relative, patterns), f"{relative} is left out of the context"


def test_the_context_leaves_out_what_the_image_must_not_hold() -> None:
    patterns = _dockerignore()
    left_out = [".git/config", ".venv/bin/python", ".stack/kafka/data", "tests/deploy/support.py"]
    left_out += ["models/__pycache__/kernels.cpython-311.pyc", "bench/results/latest.json", "docs/deploy.md"]
    for path in left_out:
        assert _ignored(path, patterns), f"{path} would be sent to the build"


def test_the_packaged_code_is_what_pyproject_packages() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = {s for srcs, _ in _copies() for s in srcs if (REPO / s).is_dir()}
    assert copied == packages


def test_entrypoint_is_the_console_script_and_every_role_a_real_command() -> None:
    instructions = dict(dockerfile())
    entrypoint = json.loads(instructions["ENTRYPOINT"])
    command = json.loads(instructions["CMD"])
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert entrypoint[0] == "tini" and entrypoint[-1] in scripts
    assert scripts[entrypoint[-1]] == "streams.cli:main"
    commands = cli_commands()
    assert command == ["worker"]
    assert {"worker", "api", "dashboard", "worker-health"} <= commands


def test_the_kernels_are_compiled_at_build_time_as_make_install_does() -> None:
    warm = re.search(r"python -c '([^']+)'", (REPO / "Makefile").read_text())
    assert warm is not None
    runs = [rest for keyword, rest in dockerfile() if keyword == "RUN"]
    assert any(warm.group(1) in run for run in runs), "the image must run the Makefile's warm-up"
    env = dockerfile_env()
    assert env["NUMBA_CACHE_DIR"] and env["NUMBA_CPU_NAME"] == "generic"


def test_two_stages_slim_python_311_and_a_user_that_is_not_root() -> None:
    steps = dockerfile()
    stages = [rest for keyword, rest in steps if keyword == "FROM"]
    assert len(stages) == 2
    base = next(rest for keyword, rest in steps if keyword == "ARG" and rest.startswith("PYTHON_IMAGE="))
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.11-slim(-\w+)?", base)
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == ">=3.11"
    users = [rest for keyword, rest in steps if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert "HEALTHCHECK" in dict(steps)


def test_the_image_settings_load_and_ports_match_the_defaults() -> None:
    settings = check_settings(dockerfile_env())
    assert settings.checkpoint_folder == Path("/var/lib/personalize/checkpoints/default")
    exposed = {int(p) for keyword, rest in dockerfile() if keyword == "EXPOSE" for p in rest.split()}
    assert exposed == {settings.metrics_port, settings.api_port, settings.dashboard_port}
    healthcheck = next(rest for keyword, rest in dockerfile() if keyword == "HEALTHCHECK")
    script = next(dest for srcs, dest in _copies() if srcs == ["deploy/healthcheck.py"])
    assert script in healthcheck
