"""`personalize dashboard` in headless Chromium, fed by a real worker, API, Kafka and Redis.

Its own namespace, worker (metrics on a free port; drift detectors tuned to fire within 2,000 simulated
events) and API (one experiment). The page must draw every chart with data, live; pointed at a worker
that does not answer, the same checks must find the charts empty. Chromium and chromedriver are Debian's
(`make system-deps`); Selenium drives them without downloading anything. Set DASHBOARD_SCREENSHOT to a
path to keep the screenshot (docs/dashboard.png is made that way).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from engine.api import hash_key
from engine.ops.settings import Settings
from engine.sdk.client import Client
from tests.integration.conftest import (
    EXPERIMENTS,
    ROOT,
    Worker,
    api_server,
    child_env,
    free_port,
    make_settings,
)

pytestmark = pytest.mark.integration

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
KEY = f"p13n_it-{uuid.uuid4().hex}"
CHARTS = ("throughput", "freshness", "quality", "drift", "experiments")
#: Loose drift detectors (so a taste change in 2,000 events is detected) and a short reward window.
TUNING = {
    "PERSONALIZE_DRIFT_ADWIN_DELTA": "0.3",
    "PERSONALIZE_DRIFT_WINDOW": "50",
    "PERSONALIZE_REWARD_WAIT_S": "2",
    "PERSONALIZE_POLICY_PUBLISH_S": "0.5",
}


class _MetricsWorker(Worker):
    def __init__(self, settings: Settings, log_path: Path, port: int) -> None:
        super().__init__(settings, log_path)
        self.port = port

    def env(self) -> dict[str, str]:
        return {**super().env(), "PERSONALIZE_METRICS_PORT": str(self.port), **TUNING}


@pytest.fixture(scope="module")
def dash_settings(live_stack: None) -> Settings:
    return make_settings(f"dash{uuid.uuid4().hex[:10]}")


@pytest.fixture(scope="module")
def dash_worker(
    dash_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[_MetricsWorker]:
    worker = _MetricsWorker(dash_settings, tmp_path_factory.mktemp("dash-worker") / "worker.log", free_port())
    worker.start()
    yield worker
    worker.stop()


@contextlib.contextmanager
def _dashboard(settings: Settings, metrics_url: str, log: Path) -> Iterator[str]:
    """A `personalize dashboard` subprocess scraping ``metrics_url``; yields its URL once it answers."""
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streams", "dashboard", "--metrics-url", metrics_url],
            env=child_env(settings, PERSONALIZE_DASHBOARD_PORT=str(port)),
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _until(lambda: _answers(url), 60, "the dashboard to answer", log)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            stacks = _stacks(proc.pid)  # where it hangs, for whoever reads the failure
            proc.kill()
            proc.wait(timeout=10)
            raise AssertionError(
                f"the dashboard did not exit within 30 s of SIGTERM; its threads:\n{stacks}\n"
                f"its log:\n{log.read_text()[-4000:]}"
            ) from None


def _stacks(pid: int) -> str:
    """The Python stacks of a live process (py-spy, when installed beside the interpreter)."""
    spy = Path(sys.executable).with_name("py-spy")
    if not spy.exists():
        return "(py-spy not installed)"
    done = subprocess.run([str(spy), "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=30)
    return done.stdout + done.stderr


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/data", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _until(check: Callable[[], object], timeout_s: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            tail = f"; log:\n{log.read_text()[-3000:]}" if log else ""
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}{tail}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    assert Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists(), "apt-get install chromium chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1300",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_script_timeout(20)
    yield driver
    driver.quit()


def _summary(driver: webdriver.Chrome) -> dict[str, Any]:
    summary = driver.execute_script("return window.dashboard && window.dashboard.summary();")
    return summary if isinstance(summary, dict) else {}


def _missing(summary: dict[str, Any]) -> list[str]:
    """What keeps the page from showing every chart drawn with data (empty list: nothing)."""
    problems = []
    for name in CHARTS:
        chart = summary.get(name)
        if not chart:
            problems.append(f"{name}: no chart state")
            continue
        canvas = chart["canvas"]
        if not canvas or canvas[0] < 100 or canvas[1] < 100:
            problems.append(f"{name}: no canvas ({canvas})")
        if not any(values and max(values) > 0 for values in chart["values"].values()):
            problems.append(f"{name}: no series with a value > 0 among {chart['points']} points")
        if not any(n > 20 for n in chart["inked"].values()):
            problems.append(f"{name}: no series drawn on the canvas ({chart['inked']})")
    return problems


def _traffic(settings: Settings, api: str) -> subprocess.Popen[bytes]:
    """A simulated clickstream whose tastes change at event 800 (subprocess), and 40 ranks in the
    experiment, 20 of them rewarded (the others are learned with the default reward)."""
    simulate = subprocess.Popen(
        [sys.executable, "-m", "streams", "simulate", "--users", "100", "--items", "120", "--events", "2000"]
        + ["--rate", "150", "--drift-at", "800", "--drift-fraction", "1.0", "--seed", "3"],
        env=child_env(settings),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    actions = [{"id": f"a{i}", "features": {"price": float(i)}} for i in range(4)]
    with Client(api, api_key=KEY) as client:
        for n in range(40):
            ranked = client.rank({"device": "mobile"}, actions, user_id=f"dash-user-{n}", surface="home")
            if n % 2 == 0:
                client.reward(ranked.decision_id, 1.0)
    return simulate


def test_every_chart_draws_live_data(
    dash_settings: Settings,
    dash_worker: _MetricsWorker,
    browser: webdriver.Chrome,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    logs = tmp_path_factory.mktemp("dash")
    metrics = f"http://127.0.0.1:{dash_worker.port}/metrics"
    with _dashboard(dash_settings, metrics, logs / "dashboard.log") as url:
        _until(
            lambda: httpx.get(f"{url}/api/data").json()["workers"], 90, "a heartbeat", dash_worker.log_path
        )
        browser.get(url)
        _until(
            lambda: browser.execute_script("return window.dashboard.polls") >= 2, 30, "the page's first polls"
        )
        points_at_start = _summary(browser)["throughput"]["points"]
        api_env = {"PERSONALIZE_API_KEY_HASHES": hash_key(KEY), "PERSONALIZE_EXPERIMENTS": EXPERIMENTS}
        with api_server(dash_settings, logs / "api.log", **api_env) as api:
            simulate = _traffic(dash_settings, api)
            try:
                _until(lambda: not _missing(_summary(browser)), 150, "every chart to draw data")
                _until(
                    lambda: browser.execute_script("return window.dashboard.drift.length"), 30, "drift rows"
                )
            except AssertionError as exc:
                # What the worker's reward path did (a rare run learned no reward at all: kept to trace it).
                scraped = httpx.get(metrics).text.splitlines()
                bandit = [
                    line
                    for line in scraped
                    if ("bandit" in line or "dead_letters_total" in line) and not line.startswith("#")
                ]
                raise AssertionError(
                    f"{exc}: {_missing(_summary(browser))}; worker's bandit metrics: {bandit}; worker log:\n"
                    + dash_worker.log_path.read_text()[-4000:]
                ) from None
            finally:
                simulate.wait(timeout=120)
        summary = _summary(browser)
        _screenshot(browser, logs / "dashboard.png")
        body = httpx.get(f"{url}/api/data").json()
    assert summary["throughput"]["points"] > points_at_start + 5, "the page stopped appending points"
    assert max(summary["throughput"]["values"]["learned/s"]) > 10
    assert max(summary["freshness"]["values"]["p99"]) > 0
    assert set(summary["experiments"]["values"]) == {"home/control", "home/explore"}
    assert all(0.0 <= v <= 1.0 for values in summary["experiments"]["values"].values() for v in values)
    model = browser.find_element("id", "model").text
    assert body["workers"][0]["model_version"] in model, model
    rows = browser.find_elements("css selector", "#drift-table tbody tr")
    assert len(rows) == len(body["drift"]) > 0
    assert body["drift"][0]["signal"] in rows[0].text


def _screenshot(browser: webdriver.Chrome, path: Path) -> None:
    browser.save_screenshot(str(path))
    if keep := os.environ.get("DASHBOARD_SCREENSHOT"):
        shutil.copyfile(path, keep)


def test_a_worker_that_does_not_answer_leaves_the_charts_empty(
    dash_settings: Settings, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    nobody = f"http://127.0.0.1:{free_port()}/metrics"
    with _dashboard(dash_settings, nobody, tmp_path / "dashboard.log") as url:
        browser.get(url)
        _until(lambda: browser.execute_script("return window.dashboard.polls") >= 3, 30, "the page's polls")
        status = browser.find_element("id", "status")
        # The status line follows each poll; on a loaded machine one poll can time out and name that
        # instead, so wait for the worker's error rather than reading one moment.
        _until(lambda: "ConnectError" in status.text, 30, "ConnectError in the status line")
        assert "bad" in (status.get_attribute("class") or "")
        summary = _summary(browser)
    problems = _missing(summary)
    assert summary["throughput"]["points"] >= 3
    assert {p.split(":")[0] for p in problems} == set(CHARTS), problems
