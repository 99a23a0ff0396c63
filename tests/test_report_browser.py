"""The report in a real browser: headless Chromium via Selenium (Debian's chromium and
chromium-driver, so Selenium Manager never downloads anything).

Every image must decode, the expected headings must be there, a scenario named like a
script must show as text and never run, and the console must stay free of errors. Skipped
only on a machine without Chromium outside CI; under CI (``CI=true``) it always runs.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from test_analysis import sobol_design
from test_analysis import write_run_dir
from test_analysis import write_study_dir

from marketsim.report import build_report

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
IN_CI = os.environ.get("CI", "").strip().lower() == "true"
XSS = "<script>alert(1)</script>"

NEEDS_CHROMIUM = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()) and not IN_CI,
    reason="needs /usr/bin/chromium and /usr/bin/chromedriver (apt-get install chromium "
    "chromium-driver); always runs under CI",
)
"""Skip a browser test only on a machine without Chromium outside CI."""
pytestmark = NEEDS_CHROMIUM


def headless_chromium(profile: Path, *arguments: str):
    """Yield a Selenium driver of Debian's headless Chromium (fresh ``profile`` directory,
    no background networking, the browser console logged), quit afterwards. A generator
    for fixtures; ``arguments`` are extra command-line flags."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        *arguments,
        f"--user-data-dir={profile}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def browser(tmp_path):
    yield from headless_chromium(tmp_path / "chromium-profile")


def _images(driver) -> list[list]:
    return driver.execute_script(
        "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.alt]);"
    )


def _severe(driver) -> list[dict]:
    return [entry for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"]


def test_study_report_renders_in_chromium(tmp_path, browser):
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    study = write_study_dir(
        tmp_path / "study",
        {"base": 0.0, XSS: 0.5},
        reference="base",
        design=sobol_design(4),
        replications=2,
    )
    out = build_report([study], tmp_path / "report.html")
    browser.get(out.resolve().as_uri())

    images = _images(browser)
    assert len(images) >= 10
    for complete, width, alt in images:
        assert complete and width > 0, f"image {alt!r} did not decode"
    headings = [h.text for h in browser.find_elements(By.TAG_NAME, "h2")]
    assert headings == [
        "Overview",
        "Headline outcomes",
        "Over time",
        "Value capture by sector",
        "Gross margin and value capture over the horizon",
        "Paired differences against base",
        "Sensitivity",
        "Provenance",
    ]
    assert browser.find_elements(By.TAG_NAME, "script") == []
    cells = [cell.text for cell in browser.find_elements(By.TAG_NAME, "th")]
    assert XSS in cells  # shown as text
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018 - reading it raises when no alert is open
    assert _severe(browser) == []


def test_comparison_of_runs_renders_in_chromium(tmp_path, browser):
    from selenium.webdriver.common.by import By

    first = write_run_dir(tmp_path / "a", name="calm")
    second = write_run_dir(tmp_path / "b", name="boom", effect=0.5)
    out = build_report([first, second], tmp_path / "report.html")
    browser.get(out.resolve().as_uri())
    images = _images(browser)
    assert images and all(complete and width > 0 for complete, width, _ in images)
    headings = [h.text for h in browser.find_elements(By.TAG_NAME, "h2")]
    assert "Paired differences against calm" in headings
    assert browser.find_element(By.TAG_NAME, "h1").text == "marketsim report: calm vs boom"
    assert _severe(browser) == []
