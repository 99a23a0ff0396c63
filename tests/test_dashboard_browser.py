"""The dashboard in a real browser: ``marketsim dashboard`` served in a subprocess, driven by
headless Chromium via Selenium (Debian's chromium and chromium-driver, the flags of
test_report_browser.py).

Pressing Step moves the step counter and redraws the charts; an out-of-range lever shows the
command line's message next to it and the model keeps its step; a study directory opens in
the results view with its charts; the console stays free of errors. Every wait is for a
condition, with a generous timeout (a loaded two-core machine). Skipped only on a machine
without Chromium outside CI; under CI (``CI=true``) it always runs.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_analysis import write_study_dir
from test_report_browser import IN_CI
from test_report_browser import NEEDS_CHROMIUM
from test_report_browser import headless_chromium

if not IN_CI:
    pytest.importorskip("solara", reason="needs the dashboard extra: pip install -e '.[dashboard]'")

pytestmark = NEEDS_CHROMIUM

ROOT = Path(__file__).resolve().parent.parent
WAIT = 60  # seconds: generous, so a busy machine is slow but never fails
ELASTICITY_ERROR = "error: --set: agents.end_demand.elasticity: must be >= 0 and <= 10, got 20"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, timeout: float) -> None:
    """Poll until the server accepts connections (fails if it exits or the time runs out)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"marketsim dashboard exited with {process.returncode}")
        with socket.socket() as client:
            client.settimeout(1)
            if client.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)  # polling interval, not an assertion
    raise AssertionError(f"marketsim dashboard did not listen on port {port} in {timeout} s")


@pytest.fixture
def dashboard(tmp_path):
    """``marketsim dashboard`` on a free port; its URL. Stopped (by its pid) afterwards."""
    port = _free_port()
    log = (tmp_path / "dashboard.log").open("w")
    environment = {**os.environ, "MPLBACKEND": "Agg", "SOLARA_TELEMETRY_MIXPANEL_ENABLE": "False"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "marketsim",
            "dashboard",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for_port(port, process, WAIT * 2)
        yield f"http://127.0.0.1:{port}/"
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
        log.close()


@pytest.fixture
def browser(tmp_path):
    yield from headless_chromium(tmp_path / "chromium-profile", "--window-size=1400,1000")


def _severe(driver) -> list[dict]:
    return [entry for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"]


def _text_of(driver, css: str) -> str | None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        found = driver.find_elements(By.CSS_SELECTOR, css)
        return found[0].text if found else None
    except StaleElementReferenceException:
        return None  # redrawn while read: the wait asks again


def _image_source(driver, alt: str) -> str | None:
    return driver.execute_script(
        "const i = Array.from(document.images).find(i => i.alt === arguments[0]);"
        "return i && i.complete && i.naturalWidth > 0 ? i.src : null;",
        alt,
    )


def _click_button(driver, label: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    path = f"//button[not(@disabled)][.//text()[normalize-space()='{label}']]"
    button = WebDriverWait(driver, WAIT).until(
        expected_conditions.element_to_be_clickable((By.XPATH, path))
    )
    button.click()


def _wait_for_step(driver, step: int) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    expected = f"Step {step} of 120"
    WebDriverWait(driver, WAIT).until(
        lambda d: _text_of(d, ".marketsim-step") == expected,
        message=f"step counter never read {expected!r}",
    )


def test_dashboard_steps_charts_levers_and_results_in_chromium(tmp_path, dashboard, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(dashboard)
    _wait_for_step(browser, 0)

    _click_button(browser, "Step")
    _wait_for_step(browser, 1)
    WebDriverWait(browser, WAIT).until(lambda d: _image_source(d, "Price: compute"))
    first = _image_source(browser, "Price: compute")
    for step in (2, 3, 4):
        _click_button(browser, "Step")
        _wait_for_step(browser, step)
    WebDriverWait(browser, WAIT).until(
        lambda d: _image_source(d, "Price: compute") not in (None, first),
        message="the compute price chart did not change after three more steps",
    )
    WebDriverWait(browser, WAIT).until(lambda d: _image_source(d, "Supply graph"))
    assert (_text_of(browser, ".marketsim-binding") or "").startswith("Binding input this step:")

    field = browser.find_element(
        By.XPATH, "//label[contains(., 'end_demand.elasticity')]/..//input"
    )
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys("20", Keys.ENTER)
    WebDriverWait(browser, WAIT).until(
        lambda d: ELASTICITY_ERROR in (_text_of(d, ".marketsim-error") or ""),
        message="the out-of-range elasticity did not show the command line's message",
    )
    assert _text_of(browser, ".marketsim-step") == "Step 4 of 120"  # the model kept its state
    _click_button(browser, "Step")
    _wait_for_step(browser, 5)

    study = write_study_dir(tmp_path / "study", {"calm": 0.0, "boom": 0.5}, reference="calm")
    _click_button(browser, "Results")
    path = WebDriverWait(browser, WAIT).until(
        lambda d: d.find_element(By.CSS_SELECTOR, ".marketsim-results-path input")
    )
    path.send_keys(str(study))
    _click_button(browser, "Open")
    WebDriverWait(browser, WAIT).until(
        lambda d: _image_source(d, "Chain capex and end revenue"),
        message="the study's charts did not appear",
    )
    assert "2 scenario(s)" in (_text_of(browser, ".marketsim-results-title") or "")
    assert _severe(browser) == []
