"""The worked examples of docs/plugins.md section 8 run as written and give the figures the
text quotes.

Each example's files are taken from the document itself (every ``File `name`:`` followed by a
code block), written to a temporary directory with the checkout's path in place of
``/abs/path/to/marketsim``, and run with ``marketsim run`` as the text says. The figures are
computed from the results and formatted as the text prints them; each must appear in its
section. When the economy changes, this test names the figure to update.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
WORKED = DOC[DOC.index("## 8 Worked examples") :]


def _sections() -> dict[str, str]:
    parts = re.split(r"\n### (8\.\d+) ", WORKED)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


SECTIONS = _sections()


def _marketsim_run(experiment: str, out: Path, settings: tuple[str, ...], cwd: Path) -> None:
    """``marketsim run EXPERIMENT --out OUT --set ...`` in ``cwd``, as the text runs it."""
    command = [sys.executable, "-m", "marketsim", "run", experiment, "--out", str(out)]
    for setting in settings:
        command += ["--set", setting]
    subprocess.run(command, cwd=cwd, check=True, capture_output=True)


def _run(section: str, *settings: str, tmp: Path) -> Path:
    """Write the section's files into ``tmp/section`` and run its experiment; the output dir."""
    folder = tmp / section.replace(".", "_")
    folder.mkdir(parents=True, exist_ok=True)
    experiment = None
    for match in re.finditer(r"File `([^`]+)`:\n\n```\w*\n(.*?)```", SECTIONS[section], re.S):
        name, text = match.group(1), match.group(2)
        (folder / name).write_text(text.replace("/abs/path/to/marketsim", str(ROOT)))
        if name.endswith(".toml"):
            experiment = name
    assert experiment, f"section {section} has no experiment file"
    _marketsim_run(experiment, folder / "out", settings, cwd=folder)
    return folder / "out"


@pytest.fixture(scope="module")
def tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("worked_examples")


def _table(out: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(out / f"{name}.parquet")


def _baseline(tmp: Path) -> Path:
    """experiments/baseline.toml for six months, with firm-level output (run once)."""
    out = tmp / "baseline_6"
    if not out.exists():
        baseline = str(ROOT / "experiments" / "baseline.toml")
        _marketsim_run(baseline, out, ("experiment.steps=6", "output.firm_level=true"), cwd=tmp)
    return out


def _market(out: Path, market: str) -> pd.DataFrame:
    table = _table(out, "markets")
    return table[table["market"] == market].set_index("step")


def _sector(out: Path, sector: str) -> pd.DataFrame:
    table = _table(out, "sectors")
    return table[table["sector"] == sector].set_index("step")


def _thousands(value: float) -> str:
    """``793,853`` -> ``"794,000"``, as the text rounds counts."""
    return f"{round(value, -3):,.0f}"


def _assert_quoted(section: str, figures: dict[str, str]) -> None:
    text = " ".join(SECTIONS[section].split())
    missing = {what: shown for what, shown in figures.items() if shown not in text}
    assert not missing, f"docs/plugins.md {section} should quote (what: as printed): {missing}"


def test_embargo(tmp):
    em = _run("8.1", "output.firm_level=true", tmp=tmp)
    base = _baseline(tmp)
    traded, traded_base = _market(em, "accelerators"), _market(base, "accelerators")
    revenue, on_order = {}, {}
    for name, out in (("em", em), ("base", base)):
        firms = _table(out, "firms").set_index("step")
        revenue[name] = firms[firms["firm"] == "chip_vendor:0"]["revenue"] / 1e9
        on_order[name] = float(firms[firms["firm"] == "datacenter:5"]["accelerators_on_order"][2])
    assert traded["quantity"][2] == traded_base["quantity"][2]  # month 2: sold out either way
    _assert_quoted(
        "8.1",
        {
            "month 2 traded": f"{traded['quantity'][2]:,.0f}",
            "month 2 unfilled": _thousands(traded["unfilled"][2]),
            "month 2 leader revenue": f"{revenue['em'][2]:.1f} billion",
            "month 2 on order": _thousands(on_order["em"]),
            "month 2 on order, baseline": _thousands(on_order["base"]),
            "month 3 traded": _thousands(traded["quantity"][3]),
            "month 3 traded, baseline": f"{traded_base['quantity'][3]:,.0f}",
            "month 3 unfilled": _thousands(traded["unfilled"][3]),
            "month 3 unfilled, baseline": _thousands(traded_base["unfilled"][3]),
            "month 3 leader revenue": (
                f"from {revenue['base'][3]:.1f} to {revenue['em'][3]:.1f} billion"
            ),
            "month 4 traded": _thousands(traded["quantity"][4]),
            "month 4 traded, baseline": _thousands(traded_base["quantity"][4]),
            "month 4 leader revenue": f"{revenue['em'][4]:.1f} billion",
            "month 4 leader revenue, baseline": f"({revenue['base'][4]:.1f} in the baseline)",
        },
    )


def test_metrics(tmp):
    out = _run("8.2", tmp=tmp)
    compute = _market(out, "compute")
    stranded = _table(out, "chain").set_index("step")["stranded_share"]
    datacenters = _sector(out, "datacenter")
    assert (stranded.loc[0:3].abs() < 1e-9).all()  # zero up to rounding dust
    _assert_quoted(
        "8.2",
        {
            "compute fill rate, month 5": f"compute {compute['fill_rate'][5]:.3f}",
            "stranded share, month 4": f"{stranded[4]:.4f} in month 4",
            "stranded share, month 5": f"{stranded[5]:.4f} in month 5",
            "data centers' capex to revenue": f"centers {datacenters['capex_to_revenue'][5]:.2f}",
        },
    )


def test_carbon_tax(tmp):
    out = _run("8.3", tmp=tmp)
    base = _baseline(tmp)
    power, power_base = _market(out, "power"), _market(base, "power")
    utility, utility_base = _sector(out, "utility"), _sector(base, "utility")
    _assert_quoted(
        "8.3",
        {
            "power price": f"from {power_base['price'][0]:.0f} to {power['price'][0]:.0f} USD",
            "gross margin": (
                f"from {100 * utility_base['gross_margin'][0]:.1f}% to "
                f"{100 * utility['gross_margin'][0]:.1f}%"
            ),
        },
    )


def test_onsite_gas(tmp):
    out = _run("8.4", tmp=tmp)
    turbines = _sector(out, "onsite_gas")
    unfilled = _market(out, "power")["unfilled"]
    assert (_market(_baseline(tmp), "power")["unfilled"] == 0).all()
    _assert_quoted(
        "8.4",
        {
            "monthly revenue": f"revenue about {turbines['revenue'].mean() / 1e6:.0f} million",
            "gross margin": f"gross margin {100 * turbines['gross_margin'][0]:.1f}%",
            "valuation": (
                f"from about {turbines['valuation'][0] / 1e9:.2f} to "
                f"{turbines['valuation'][5] / 1e9:.2f} billion"
            ),
            "power sold": f"full {turbines['sold'].max():.0f} MW",
            "unfilled power": f"between {unfilled.min():,.0f} and {unfilled.max():,.0f} MW",
        },
    )


def test_equal_split_mechanism(tmp):
    out = _run("8.5", tmp=tmp)
    kits, kits_base = _market(out, "network_kits"), _market(_baseline(tmp), "network_kits")
    assert kits_base["unfilled"][3] == 0
    _assert_quoted(
        "8.5",
        {
            "traded": f"trades {kits['quantity'][3]:,.0f} kits",
            "demand": f"demand of about {_thousands(kits['demand'][3])}",
            "unfilled": f"about {_thousands(kits['unfilled'][3])} unfilled",
            "posted price": f"all of the {_thousands(kits_base['quantity'][3])} asked",
        },
    )


def test_optical_vendor(tmp):
    out = _run("8.6", tmp=tmp)
    optical = _sector(out, "optical_vendor")
    built_in = _sector(out, "network_vendor")
    built_in_base = _sector(_baseline(tmp), "network_vendor")
    assert optical["sold"].loc[1:4].to_numpy() == pytest.approx(optical["sold"][1], rel=1e-9)
    _assert_quoted(
        "8.6",
        {
            "kits a month": f"full {optical['sold'][1]:,.0f} kits",
            "month 5": f"({_thousands(optical['sold'][5])} in month 5",
            "built-in vendors, month 5": (
                f"({_thousands(built_in['sold'][5])} kits in month 5 against "
                f"{_thousands(built_in_base['sold'][5])})"
            ),
            "gross margin": (
                f"from {100 * optical['gross_margin'][1]:.0f}% to about "
                f"{100 * optical['gross_margin'][5]:.0f}%"
            ),
        },
    )
