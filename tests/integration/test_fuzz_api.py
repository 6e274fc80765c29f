"""Schemathesis against a real `personalize api` process: every phase, stateful scenarios along the
document's links (a user's consent, preferences, list and erasure; a decision's reward), and every check
but three whose premise the API declines on purpose (see `EXCLUDED`). Must find nothing.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.api import hash_key
from engine.ops.settings import Settings
from tests.integration.conftest import api_server

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

KEY = f"p13n_fz-{uuid.uuid4().hex}"
#: positive_data_acceptance: the contract is stricter than JSON Schema can say (ts 1.7e12 written as a
#: float, a preferences request that changes nothing, a rank that excludes every action are refused).
#: use_after_free: a user's consent and preferences are answered (empty) after an erasure, by design.
#: allow_header_conformance: Starlette's 405 names the methods of the one route the path matched.
EXCLUDED = "positive_data_acceptance,use_after_free,allow_header_conformance"
EXAMPLES = 50


@pytest.fixture(scope="module")
def api_url(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("fuzz-api") / "api.log"
    with api_server(settings, log, PERSONALIZE_API_KEY_HASHES=hash_key(KEY)) as url:
        yield url


async def test_schemathesis_finds_nothing_in_any_phase_or_along_any_link(
    api_url: str, tmp_path: Path
) -> None:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{api_url}/openapi.json",
        "--header",
        f"X-API-Key: {KEY}",
        "--checks",
        "all",
        "--exclude-checks",
        EXCLUDED,
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        str(EXAMPLES),
        "--workers",
        "1",
        "--seed",
        "1",
        "--generation-database",
        "none",
        "--no-color",
    ]
    out = await asyncio.to_thread(
        subprocess.run, command, cwd=tmp_path, capture_output=True, text=True, timeout=900
    )
    report = out.stdout[-6000:] + out.stderr[-2000:]
    assert out.returncode == 0, report
    generated = re.search(r"(\d+) generated, (\d+) passed", out.stdout)
    scenarios = re.search(r"Scenarios:\s+(\d+)", out.stdout)
    links = re.search(r"API Links:\s+(\d+) covered", out.stdout)
    assert generated and scenarios and links, report
    assert int(generated[1]) == int(generated[2]) >= 500, report  # several hundred cases, all passed
    assert int(scenarios[1]) >= 10 and int(links[1]) >= 8, report  # the stateful phase followed links
