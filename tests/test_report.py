"""The HTML report and the compare table: self-contained, escaped, refusing bad input.

The directories are synthetic (tests/test_analysis.py writes them), so every number is
known; one test reports a real run of the baseline to check the whole path.
"""

from __future__ import annotations

import base64
import re

import pandas as pd
import pytest
from click.testing import CliRunner
from test_analysis import sobol_design
from test_analysis import write_run_dir
from test_analysis import write_study_dir

from marketsim.report.command import compare
from marketsim.report.command import report
from marketsim.report.formatting import format_interval
from marketsim.report.formatting import format_value

XSS = "<script>alert(1)</script>"
IMAGE = re.compile(r"<img\b[^>]*\bsrc=\"([^\"]*)\"", re.IGNORECASE)


def invoke(command, *args):
    return CliRunner().invoke(command, [str(a) for a in args])


def one_error_line(result) -> str:
    """The single stderr line of a refused command (exit code 2, no traceback)."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    return lines[0]


def build(tmp_path, *directories, name="report.html") -> str:
    out = tmp_path / name
    result = invoke(report, *directories, "--out", out)
    assert result.exit_code == 0, (result.output, result.exception)
    assert result.stdout.strip() == f"wrote {out}"
    return out.read_text(encoding="utf-8")


def assert_self_contained(html: str) -> None:
    lowered = html.lower()
    assert "<script" not in lowered
    assert "<link" not in lowered
    assert "http://" not in lowered and "https://" not in lowered
    assert "url(" not in lowered
    assert not re.search(r"\b(?:src|href)=\"(?!data:)", html)
    sources = IMAGE.findall(html)
    assert sources
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        data = base64.b64decode(source.split(",", 1)[1], validate=True)
        assert data.startswith(b"\x89PNG\r\n\x1a\n")


def headings(html: str) -> list[str]:
    return re.findall(r"<h2[^>]*>(.*?)</h2>", html)


def test_report_of_a_run_is_self_contained(tmp_path):
    run = write_run_dir(tmp_path / "run", name="baseline")
    html = build(tmp_path, run)
    assert_self_contained(html)
    assert headings(html) == [
        "Overview",
        "Headline outcomes",
        "Over time",
        "Value capture by sector",
        "Gross margin and value capture over the horizon",
        "Provenance",
    ]
    # Five chain charts, two market prices, one stacked chart.
    assert len(IMAGE.findall(html)) == 8
    assert '70.0% <span class="ci">[70.0%, 70.0%]</span>' in html  # chip vendor margin
    assert "0" * 64 in html  # the experiment's hash in the provenance


def test_report_escapes_every_name(tmp_path):
    study = write_study_dir(
        tmp_path / "study", {"base": 0.0, XSS: 0.5, "cost $5 & co": 0.1}, reference="base"
    )
    html = build(tmp_path, study)
    assert_self_contained(html)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "cost $5 &amp; co" in html
    assert "<script" not in html.lower()


def test_report_of_a_study_shows_differences_and_sensitivity(tmp_path):
    study = write_study_dir(
        tmp_path / "study",
        {"base": 0.0, "boom": 0.5},
        reference="base",
        design=sobol_design(4),
        replications=2,
    )
    html = build(tmp_path, study)
    assert_self_contained(html)
    assert "Paired differences against base" in headings(html)
    assert "Sensitivity" in headings(html)
    capex = re.search(
        r"<tr class=\"significant\"><td>boom</td>\s*<td><code>chain\.chain_capex", html
    )
    assert capex, "the capex difference of +50% in every pair is marked significant"
    # Only chain capex moves with the factors: one Sobol chart per scenario.
    assert html.count("(sobol)</figcaption>") == 2
    assert "chain.chain_capex.cumulative (sobol)</figcaption>" in html


def test_report_compares_directories_side_by_side(tmp_path):
    first = write_run_dir(tmp_path / "a", name="same")
    second = write_run_dir(tmp_path / "b", name="same", effect=0.5)
    html = build(tmp_path, first, second)
    assert_self_contained(html)
    assert "Paired differences against same" in headings(html)
    assert '<th colspan="2">same (2)</th>' in html
    assert "their replication seeds match (common random numbers)" in html


def test_report_refuses_to_overwrite_unless_asked(tmp_path):
    run = write_run_dir(tmp_path / "run")
    out = tmp_path / "report.html"
    out.write_text("keep", encoding="utf-8")
    line = one_error_line(invoke(report, run, "--out", out))
    assert line == f"error: {out}: exists; pass --overwrite to replace it"
    assert out.read_text(encoding="utf-8") == "keep"
    assert invoke(report, run, "--out", out, "--overwrite").exit_code == 0
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_report_bad_input_is_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "report.html"
    empty = tmp_path / "empty"
    empty.mkdir()
    line = one_error_line(invoke(report, empty, "--out", out))
    assert line == f"error: {empty}: not a marketsim results directory (no manifest.json)"
    line = one_error_line(invoke(report, tmp_path / "missing", "--out", out))
    assert line == f"error: {tmp_path / 'missing'}: no such directory"
    run = write_run_dir(tmp_path / "run")
    (run / "chain.parquet").write_bytes(b"not parquet")
    line = one_error_line(invoke(report, run, "--out", out))
    assert line.startswith(f"error: {run / 'chain.parquet'}: cannot read: ")
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_report_of_a_real_run(tmp_path, short_baseline):
    import marketsim

    results = marketsim.run(marketsim.load_experiment(short_baseline))
    results.write(tmp_path / "run")
    html = build(tmp_path, tmp_path / "run")
    assert_self_contained(html)
    assert "Provenance" in headings(html)


# --- compare ----------------------------------------------------------------------------


def _rows(text: str) -> dict[str, list[str]]:
    return {
        line.split()[0]: line.split() for line in text.splitlines() if line.startswith("chain.")
    }


def test_compare_two_runs_prints_the_paired_difference(tmp_path):
    first = write_run_dir(tmp_path / "a", name="calm")
    second = write_run_dir(tmp_path / "b", name="boom", effect=0.5)
    result = invoke(compare, first, second)
    assert result.exit_code == 0, (result.output, result.exception)
    lines = result.stdout.splitlines()
    assert lines[0] == f"A: {first} (run calm)"
    assert lines[1] == f"B: {second} (run boom)"
    assert "same replication seeds: common random numbers" in lines[2]
    chain = pd.read_parquet(first / "chain.parquet")
    capex = chain.groupby("replication")["chain_capex"].sum()
    # B's capex is 1.5 times A's in every replication: differences 0.5 capex_r.
    difference = 0.5 * capex
    half = 4.30265272991 * difference.std() / 3**0.5
    row = _rows(result.stdout)["chain.chain_capex.cumulative"]
    assert row[2] == format_value(capex.mean(), "USD")
    assert row[3] == format_value(1.5 * capex.mean(), "USD")
    assert row[4] == format_value(difference.mean(), "USD", difference=True)
    interval = format_interval(difference.mean() - half, difference.mean() + half, "USD", True)
    assert " ".join(row[5:7]) == interval
    assert row[7:] == ["3", "*"]
    assert lines[-1] == "* the 95% CI of the paired difference excludes zero"


def test_compare_a_run_with_itself_finds_no_difference(tmp_path):
    run = write_run_dir(tmp_path / "a")
    result = invoke(compare, run, run)
    assert result.exit_code == 0, result.output
    for row in _rows(result.stdout).values():
        assert "*" not in row[4:]


def test_compare_two_scenarios_of_a_study(tmp_path):
    study = write_study_dir(tmp_path / "study", {"base": 0.0, XSS: 0.5})
    result = invoke(compare, "--study", study, "base", XSS)
    assert result.exit_code == 0, (result.output, result.exception)
    assert result.stdout.splitlines()[2] == f"B: scenario {XSS}"
    assert _rows(result.stdout)["chain.chain_capex.cumulative"][-1] == "*"


@pytest.mark.parametrize("case", ["missing scenario", "study without --study", "run as study"])
def test_compare_bad_input_is_one_line(tmp_path, case):
    study = write_study_dir(tmp_path / "study", {"base": 0.0, "boom": 0.5})
    run = write_run_dir(tmp_path / "run")
    if case == "missing scenario":
        line = one_error_line(invoke(compare, "--study", study, "base", "nope"))
        assert line == f"error: {study}: scenario 'nope' not found; the study has 'base', 'boom'"
    elif case == "study without --study":
        line = one_error_line(invoke(compare, study, run))
        assert line.startswith(f"error: {study}: expected a run directory, got a study")
    else:
        line = one_error_line(invoke(compare, "--study", run, "a", "b"))
        assert line.startswith(f"error: {run}: expected a study directory for --study")
