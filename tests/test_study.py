"""Studies: the study file, design points, common random numbers, part files, resume."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import marketsim
from marketsim.errors import ExperimentError
from marketsim.errors import ResultsError
from marketsim.study import StudyResults
from marketsim.study import load_study
from marketsim.study import read_study
from marketsim.study import run_study
from marketsim.study.command import study as study_command
from marketsim.study.seeds import replication_seed
from marketsim.study.writing import part_name

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENTS = ROOT / "experiments"
STEPS = 3


def write_study(folder: Path, body: str, name: str = "study.toml") -> Path:
    """A study file in ``folder``; ``EXP`` in ``body`` is the experiments folder."""
    path = folder / name
    path.write_text(body.replace("EXP", EXPERIMENTS.as_posix()), encoding="utf-8")
    return path


def small_study(folder: Path, extra: str = "", replications: int = 2) -> Path:
    """Two scenarios x two grid points x ``replications``, three steps each."""
    return write_study(
        folder,
        f"""
[study]
name = "small"
seed = 7
replications = {replications}
reference = "no_bubble"

[study.scenarios]
no_bubble = "EXP/no_bubble.toml"
bubble = "EXP/bubble.toml"

[study.set]
"experiment.steps" = {STEPS}

[study.factors]
"agents.end_demand.elasticity" = [0.6, 1.6]
{extra}
""",
    )


def part_bytes(directory: Path) -> dict[str, bytes]:
    """Every part file under the study directory, by relative path."""
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for table in ("sectors", "markets", "chain", "firms")
        if (directory / table).is_dir()
        for path in sorted((directory / table).iterdir())
    }


def invoke(*args: str):
    return CliRunner().invoke(study_command, [str(arg) for arg in args])


# --- the study file -------------------------------------------------------------------------

SCENARIOS = '[study.scenarios]\nbase = "EXP/baseline.toml"\n'
HEAD = '[study]\nname = "s"\n'

BAD_STUDIES = [
    ("invalid TOML", "[study\n", None, "invalid TOML at line 1"),
    ("no study table", "[other]\nx = 1\n", "other", "unknown key 'other'"),
    ("missing study table", "", "study", "missing required table [study]"),
    (
        "unknown study key",
        HEAD + "replication = 3\n" + SCENARIOS,
        "study.replication",
        "did you mean 'replications'?",
    ),
    ("missing name", "[study]\nseed = 1\n" + SCENARIOS, "study.name", "missing required key"),
    ("bad name", '[study]\nname = "a/b"\n' + SCENARIOS, "study.name", "letters, digits"),
    ("negative seed", HEAD + "seed = -1\n" + SCENARIOS, "study.seed", "must be >= 0, got -1"),
    (
        "zero replications",
        HEAD + "replications = 0\n" + SCENARIOS,
        "study.replications",
        "must be >= 1, got 0",
    ),
    (
        "string replications",
        HEAD + 'replications = "20"\n' + SCENARIOS,
        "study.replications",
        "expected an integer, got '20'",
    ),
    (
        "too many replications",
        HEAD + "replications = 10001\n" + SCENARIOS,
        "study.replications",
        "must be <= 10000",
    ),
    (
        "graph option not a boolean",
        HEAD + "graph_per_replication = 1\n" + SCENARIOS,
        "study.graph_per_replication",
        "expected a boolean, got 1",
    ),
    (
        "outcomes not a list",
        HEAD + 'outcomes = "capex"\n' + SCENARIOS,
        "study.outcomes",
        "expected a list of strings",
    ),
    ("no scenarios", HEAD, "study.scenarios", "missing required table"),
    (
        "empty scenarios",
        HEAD + "[study.scenarios]\n",
        "study.scenarios",
        "expected at least one scenario",
    ),
    (
        "scenario file missing",
        HEAD + '[study.scenarios]\na = "nowhere.toml"\n',
        "study.scenarios.a",
        "scenario file not found",
    ),
    (
        "scenario not a string",
        HEAD + "[study.scenarios]\na = 3\n",
        "study.scenarios.a",
        "expected a string (an experiment file) or a table, got 3",
    ),
    (
        "inline scenario unknown key",
        HEAD + '[study.scenarios]\na = { extends = "EXP/baseline.toml", sett = {} }\n',
        "study.scenarios.a.sett",
        "did you mean 'set'?",
    ),
    (
        "inline scenario without extends",
        HEAD + "[study.scenarios]\na = { set = {} }\n",
        "study.scenarios.a.extends",
        "missing required key",
    ),
    (
        "reference not a scenario",
        HEAD + 'reference = "bse"\n' + SCENARIOS,
        "study.reference",
        "must name a scenario, got 'bse' (did you mean 'base'?)",
    ),
    (
        "set the seed",
        HEAD + SCENARIOS + '[study.set]\n"experiment.seed" = 3\n',
        'study.set."experiment.seed"',
        "the study sets it to [study] seed",
    ),
    (
        "set an unknown key",
        HEAD + SCENARIOS + '[study.set]\n"agents.utility.capacity_mww" = 5\n',
        'study.set."agents.utility.capacity_mww"',
        "did you mean 'capacity_mw'?",
    ),
    (
        "set out of range",
        HEAD + SCENARIOS + '[study.set]\n"experiment.steps" = 0\n',
        'study.set."experiment.steps"',
        "got 0",
    ),
    (
        "inline set out of range",
        HEAD + '[study.scenarios]\na = { extends = "EXP/baseline.toml",'
        " set = { agents = { end_demand = { elasticity = -1.0 } } } }\n",
        "study.scenarios.a.set.agents.end_demand.elasticity",
        "got -1.0",
    ),
    (
        "factor key missing",
        HEAD + SCENARIOS + '[study.factors]\n"agents.utility.nope" = [1]\n',
        'study.factors."agents.utility.nope"',
        "no such key in scenario 'base'",
    ),
    (
        "factor a table",
        HEAD + SCENARIOS + '[study.factors]\n"agents.utility" = [1]\n',
        'study.factors."agents.utility"',
        "must name a single value; it is a table",
    ),
    (
        "grid factor not a list",
        HEAD + SCENARIOS + '[study.factors]\n"agents.end_demand.elasticity" = 1.0\n',
        'study.factors."agents.end_demand.elasticity"',
        "expected a list of values (a grid)",
    ),
    (
        "grid factor empty",
        HEAD + SCENARIOS + '[study.factors]\n"agents.end_demand.elasticity" = []\n',
        'study.factors."agents.end_demand.elasticity"',
        "expected a non-empty list",
    ),
    (
        "grid value twice",
        HEAD + SCENARIOS + '[study.factors]\n"agents.end_demand.elasticity" = [1.0, 1.0]\n',
        'study.factors."agents.end_demand.elasticity"',
        "lists a value twice",
    ),
    (
        "grid value out of range",
        HEAD + SCENARIOS + '[study.factors]\n"agents.end_demand.elasticity" = [1.0, -1.0]\n',
        'study.factors."agents.end_demand.elasticity"[1]',
        "got -1.0",
    ),
    (
        "grid value of the wrong type",
        HEAD
        + SCENARIOS
        + '[study.factors]\n"agents.utility.interconnection_lead_months" = [12, 24.5]\n',
        'study.factors."agents.utility.interconnection_lead_months"[1]',
        "expected an integer",
    ),
    (
        "factor on the seed",
        HEAD + SCENARIOS + '[study.factors]\n"graph.seed" = [1, 2]\n',
        'study.factors."graph.seed"',
        "cannot be a factor",
    ),
    (
        "unknown sample method",
        HEAD + SCENARIOS + '[study.sample]\nmethod = "halton"\nn = 8\n',
        "study.sample.method",
        "must be one of 'sobol', 'morris', 'lhs', got 'halton'",
    ),
    (
        "sample n zero",
        HEAD + SCENARIOS + '[study.sample]\nmethod = "lhs"\nn = 0\n',
        "study.sample.n",
        "must be >= 1, got 0",
    ),
    (
        "sobol n not a power of 2",
        HEAD + SCENARIOS + '[study.sample]\nmethod = "sobol"\nn = 50\n',
        "study.sample.n",
        "must be a power of 2",
    ),
    (
        "levels without morris",
        HEAD + SCENARIOS + '[study.sample]\nmethod = "lhs"\nn = 4\nlevels = 4\n',
        "study.sample.levels",
        "only applies to method 'morris'",
    ),
    (
        "sample without factors",
        HEAD + SCENARIOS + '[study.sample]\nmethod = "lhs"\nn = 4\n',
        "study.sample",
        "needs factors with a range",
    ),
    (
        "sample with a grid factor",
        HEAD
        + SCENARIOS
        + '[study.sample]\nmethod = "lhs"\nn = 4\n'
        + '[study.factors]\n"agents.end_demand.elasticity" = [1.0, 2.0]\n',
        'study.factors."agents.end_demand.elasticity"',
        "every factor needs range = [low, high]",
    ),
    (
        "range without sample",
        HEAD + SCENARIOS + '[study.factors."agents.end_demand.elasticity"]\nrange = [0.5, 2.0]\n',
        'study.factors."agents.end_demand.elasticity"',
        "a range factor needs [study.sample]",
    ),
    (
        "range low above high",
        HEAD
        + SCENARIOS
        + '[study.sample]\nmethod = "lhs"\nn = 4\n'
        + '[study.factors."agents.end_demand.elasticity"]\nrange = [2.0, 0.5]\n',
        'study.factors."agents.end_demand.elasticity".range',
        "low must be < high",
    ),
    (
        "range not two numbers",
        HEAD
        + SCENARIOS
        + '[study.sample]\nmethod = "lhs"\nn = 4\n'
        + '[study.factors."agents.end_demand.elasticity"]\nrange = [0.5]\n',
        'study.factors."agents.end_demand.elasticity".range',
        "expected [low, high]",
    ),
    (
        "range on a string parameter",
        HEAD
        + SCENARIOS
        + '[study.sample]\nmethod = "lhs"\nn = 4\n'
        + '[study.factors."agents.datacenter.pricing"]\nrange = [0, 1]\n',
        'study.factors."agents.datacenter.pricing"',
        "a range factor must be numeric",
    ),
    (
        "range beyond the parameter",
        HEAD
        + SCENARIOS
        + '[study.sample]\nmethod = "lhs"\nn = 4\n'
        + '[study.factors."agents.investor.intensity_of_choice"]\nrange = [0.5, 2000]\n',
        'study.factors."agents.investor.intensity_of_choice".range',
        "<= 1000, got 2000",
    ),
    (
        "integer range not whole",
        HEAD
        + SCENARIOS
        + '[study.sample]\nmethod = "lhs"\nn = 4\n'
        + '[study.factors."agents.utility.interconnection_lead_months"]\nrange = [12.5, 72]\n',
        'study.factors."agents.utility.interconnection_lead_months".range',
        "whole numbers",
    ),
]


@pytest.mark.parametrize(
    ("body", "key", "message"),
    [case[1:] for case in BAD_STUDIES],
    ids=[case[0] for case in BAD_STUDIES],
)
def test_bad_study_file_is_one_line_exit_2_and_nothing_written(tmp_path, body, key, message):
    """Every mistake in a study file: one line naming the file and key, exit 2, no output."""
    path = write_study(tmp_path, body)
    out = tmp_path / "out"
    result = invoke(path, "--out", out, "--workers", "1", "--quiet")
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    prefix = f"error: {path}: " + (f"{key}: " if key else "")
    assert lines[0].startswith(prefix), lines[0]
    assert message in lines[0]
    assert not out.exists()


def test_a_scenario_file_with_a_mistake_is_named_by_its_own_file(tmp_path):
    """An error inside a scenario's experiment names that experiment file and key."""
    experiment = tmp_path / "bad.toml"
    experiment.write_text(
        f'extends = "{(EXPERIMENTS / "baseline.toml").as_posix()}"\n'
        "[agents.utility]\ncapacity_mw = -5.0\n",
        encoding="utf-8",
    )
    path = write_study(tmp_path, HEAD + '[study.scenarios]\nbad = "bad.toml"\n')
    result = invoke(path, "--out", tmp_path / "out", "--quiet")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {experiment}: agents.utility.capacity_mw: ")
    assert "must be > 0" in result.stderr


def test_missing_study_file_is_one_line(tmp_path):
    """A study file that does not exist: one line, exit 2."""
    result = invoke(tmp_path / "none.toml", "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {tmp_path / 'none.toml'}: file not found"


# --- designs --------------------------------------------------------------------------------


def test_grid_is_the_cartesian_product_in_the_order_written(tmp_path):
    """Grid points: every combination, the first factor changing slowest."""
    path = write_study(
        tmp_path,
        HEAD
        + SCENARIOS
        + '[study.factors]\n"agents.end_demand.elasticity" = [0.6, 1]\n'
        + '"agents.utility.interconnection_lead_months" = [12, 24, 36]\n',
    )
    design = load_study(path).design
    assert design.method == "grid"
    assert [tuple(point.values()) for point in design.points] == [
        (0.6, 12),
        (0.6, 24),
        (0.6, 36),
        (1.0, 12),
        (1.0, 24),
        (1.0, 36),
    ]
    assert all(isinstance(point["agents.end_demand.elasticity"], float) for point in design.points)


SAMPLED = """
[study.sample]
method = "{method}"
n = {n}

[study.factors."agents.end_demand.elasticity"]
range = [0.5, 2.0]

[study.factors."agents.utility.interconnection_lead_months"]
range = [12, 72]
"""


@pytest.mark.parametrize(
    ("method", "n", "points"), [("sobol", 8, 32), ("morris", 3, 9), ("lhs", 5, 5)]
)
def test_sampled_designs_have_salib_point_counts_and_rounded_integers(tmp_path, method, n, points):
    """Sobol n(k+2), Morris n(k+1), LHS n points; integers rounded into their range."""
    path = write_study(tmp_path, HEAD + SCENARIOS + SAMPLED.format(method=method, n=n))
    study = load_study(path)
    design = study.design
    assert design.method == method and design.n == n and len(design.points) == points
    leads = [point["agents.utility.interconnection_lead_months"] for point in design.points]
    elasticities = [point["agents.end_demand.elasticity"] for point in design.points]
    assert all(isinstance(lead, int) and 12 <= lead <= 72 for lead in leads)
    assert all(isinstance(e, float) and 0.5 <= e <= 2.0 for e in elasticities)
    assert design.salib_problem["bounds"] == [[0.5, 2.0], [11.5, 72.5]]
    assert load_study(path).design == design  # seeded: the same points every time


# --- common random numbers and the tables ---------------------------------------------------


def test_study_tables_are_parquet_datasets_with_key_and_factor_columns(tmp_path):
    """Each table is a folder of part files pandas reads as one, keyed by task."""
    study = load_study(small_study(tmp_path))
    results = run_study(study, workers=1, out=tmp_path / "out", analyse=False)
    chain = pd.read_parquet(tmp_path / "out" / "chain")
    assert list(chain.columns[:5]) == [
        "scenario",
        "point",
        "replication",
        "agents.end_demand.elasticity",
        "step",
    ]
    assert len(chain) == 2 * 2 * 2 * STEPS
    runs = chain.groupby(["scenario", "point", "replication"]).size()
    assert runs.to_dict() == {key: STEPS for key in runs.index}
    assert set(zip(chain.point, chain["agents.end_demand.elasticity"], strict=True)) == {
        (0, 0.6),
        (1, 1.6),
    }
    sectors = results.runs("sectors")
    assert list(sectors.columns[:6]) == [
        "scenario",
        "point",
        "replication",
        "agents.end_demand.elasticity",
        "step",
        "sector",
    ]
    assert sorted(os.listdir(tmp_path / "out" / "chain"))[0] == part_name(0, 0, 0)


def test_manifest_records_the_study_scenarios_design_seeds_and_status(tmp_path):
    """The manifest has the layout the analysis codes against."""
    study = load_study(small_study(tmp_path))
    run_study(study, workers=1, out=tmp_path / "out", analyse=False)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["kind"] == "study"
    assert {
        "name",
        "seed",
        "replications",
        "reference",
        "graph_per_replication",
        "outcomes",
        "sha256",
        "status",
    } <= set(manifest["study"])
    assert manifest["study"]["status"] == "complete"
    assert manifest["study"]["sha256"] == study.sha256
    assert set(manifest["scenarios"]) == {"no_bubble", "bubble"}
    bubble = manifest["scenarios"]["bubble"]
    assert bubble["sha256"] == study.scenarios[1].experiment.sha256
    assert bubble["experiment"]["experiment"]["steps"] == STEPS
    assert manifest["factors"] == [{"key": "agents.end_demand.elasticity", "values": [0.6, 1.6]}]
    design = manifest["design"]
    assert design["method"] == "grid" and design["n"] == 2
    assert design["points"][1] == {"point": 1, "values": {"agents.end_demand.elasticity": 1.6}}
    assert design["salib_problem"] is None and design["calc_second_order"] is False
    assert manifest["units"]["chain"]["chain_capex"]
    assert manifest["tasks"] == 8
    sequences = np.random.SeedSequence(7).spawn(2)
    assert [s["spawn_key"] for s in manifest["seeds"]] == [list(q.spawn_key) for q in sequences]
    assert {"numpy", "SALib", "marketsim"} <= set(manifest["versions"])


def test_replication_seed_is_the_spawned_sequence():
    """Replication r's seed sequence is SeedSequence(seed).spawn(R)[r]."""
    spawned = np.random.SeedSequence(7).spawn(5)
    for replication in range(5):
        ours = replication_seed(7, replication)
        assert ours.generate_state(4).tolist() == spawned[replication].generate_state(4).tolist()


def test_replication_r_matches_marketsim_run_of_the_resolved_experiment(tmp_path):
    """With one shared graph, replication r of a study is replication r of `marketsim.run`."""
    path = write_study(
        tmp_path,
        '[study]\nname = "s"\nseed = 7\nreplications = 2\ngraph_per_replication = false\n'
        + SCENARIOS
        + f'[study.set]\n"experiment.steps" = {STEPS}\n',
    )
    results = run_study(load_study(path), workers=1, out=tmp_path / "out", analyse=False)
    experiment = marketsim.load_experiment(
        EXPERIMENTS / "baseline.toml",
        [
            f"experiment.steps={STEPS}",
            "experiment.seed=7",
            "experiment.replications=2",
            "graph.seed=7",
        ],
    )
    expected = marketsim.run(experiment).chain
    got = results.runs("chain").drop(columns=["scenario", "point"])
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


def test_common_random_numbers_same_draws_in_every_scenario_and_point(tmp_path):
    """Two scenarios that are the same experiment give the same tables, run by run; each
    replication draws its own supply graph, the same one in every scenario."""
    path = write_study(
        tmp_path,
        '[study]\nname = "s"\nseed = 3\nreplications = 2\n'
        '[study.scenarios]\na = "EXP/baseline.toml"\nb = "EXP/baseline.toml"\n'
        f'[study.set]\n"experiment.steps" = {STEPS}\n',
    )
    study = load_study(path)
    graph_seeds = [study.graph_seed(r) for r in range(2)]
    assert graph_seeds[0] != graph_seeds[1]
    a, b = study.scenarios
    assert study.task_config(a, 0, 1) == study.task_config(b, 0, 1)
    chain = run_study(study, workers=1, out=tmp_path / "out", analyse=False).runs("chain")
    first = chain[chain.scenario == "a"].drop(columns="scenario").reset_index(drop=True)
    second = chain[chain.scenario == "b"].drop(columns="scenario").reset_index(drop=True)
    pd.testing.assert_frame_equal(first, second)
    assert not first[first.replication == 0].end_revenue.equals(
        first[first.replication == 1].end_revenue.reset_index(drop=True)
    )


def test_values_apply_in_order_scenario_set_then_study_set_then_factor(tmp_path):
    """A later layer of values wins: scenario set, then [study.set], then the factor."""
    path = write_study(
        tmp_path,
        HEAD + '[study.scenarios]\na = { extends = "EXP/baseline.toml", set = { '
        '"experiment.steps" = 9, "agents.end_demand.elasticity" = 0.7, '
        '"agents.investor.intensity_of_choice" = 3.0 } }\n'
        '[study.set]\n"experiment.steps" = 4\n"agents.investor.intensity_of_choice" = 2.5\n'
        '[study.factors]\n"agents.investor.intensity_of_choice" = [0.5]\n',
    )
    study = load_study(path)
    config = study.task_config(study.scenarios[0], 0, 0)
    assert config["experiment"]["steps"] == 4
    assert config["agents"]["end_demand"]["elasticity"] == 0.7
    assert config["agents"]["investor"]["intensity_of_choice"] == 0.5


# --- the directory, interruption and resume -------------------------------------------------


def test_resume_after_interruption_gives_byte_identical_tables(tmp_path, monkeypatch):
    """Ctrl-C after three tasks keeps them; --resume runs the rest; tables as uninterrupted."""
    path = small_study(tmp_path)
    whole = tmp_path / "whole"
    assert invoke(path, "--out", whole, "--workers", "1", "--quiet").exit_code == 0

    import marketsim.study.executors as executors

    real = executors.run_task
    calls = []

    def interrupted_after_three(spec):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(spec)
        return real(spec)

    monkeypatch.setattr(executors, "run_task", interrupted_after_three)
    broken = tmp_path / "broken"
    result = invoke(path, "--out", broken, "--workers", "1", "--quiet")
    assert result.exit_code == 130
    assert "3 of 8 tasks are finished" in result.stderr and "--resume" in result.stderr
    assert len(part_bytes(broken)) == 3 * 3
    assert json.loads((broken / "manifest.json").read_text())["study"]["status"] == "running"
    monkeypatch.setattr(executors, "run_task", real)

    refused = invoke(path, "--out", broken, "--workers", "1", "--quiet")
    assert refused.exit_code == 2 and "--resume" in refused.stderr
    result = invoke(path, "--out", broken, "--workers", "1", "--resume")
    assert result.exit_code == 0, result.output
    assert "5 run now, 3 already finished" in result.stdout
    assert part_bytes(broken) == part_bytes(whole)
    pd.testing.assert_frame_equal(
        pd.read_parquet(broken / "chain"), pd.read_parquet(whole / "chain")
    )
    assert json.loads((broken / "manifest.json").read_text())["study"]["status"] == "complete"


def test_resume_reruns_tasks_with_missing_parts_and_ignores_temporaries(tmp_path):
    """Resume reruns exactly the tasks missing a part file and removes leftover temporaries."""
    path = small_study(tmp_path)
    out = tmp_path / "out"
    run_study(load_study(path), workers=1, out=out, analyse=False)
    before = part_bytes(out)
    (out / "chain" / part_name(1, 1, 1)).unlink()
    (out / "sectors" / part_name(0, 0, 0)).unlink()
    (out / "markets" / f".{part_name(0, 1, 0)}.x1.tmp").write_bytes(b"half a file")
    results = run_study(load_study(path), workers=1, out=out, resume=True, analyse=False)
    assert sorted(
        results.timings[["scenario", "point", "replication"]].itertuples(index=False)
    ) == [
        ("bubble", 1, 1),
        ("no_bubble", 0, 0),
    ]
    assert part_bytes(out) == before
    assert not [p for p in (out / "markets").iterdir() if p.name.startswith(".")]


def test_resume_refuses_a_different_study(tmp_path):
    """Resume into a directory holding another study (different hash) is refused."""
    path = small_study(tmp_path)
    run_study(load_study(path), workers=1, out=tmp_path / "out", analyse=False)
    other = tmp_path / "other"
    other.mkdir()
    changed = small_study(other, replications=3)
    with pytest.raises(ResultsError, match="holds a different study"):
        run_study(load_study(changed), workers=1, out=tmp_path / "out", resume=True)


def test_refuses_a_directory_with_a_foreign_file_and_deletes_nothing(tmp_path):
    """A file a study does not write stops even --overwrite, and is named; nothing is deleted."""
    path = small_study(tmp_path)
    out = tmp_path / "out"
    run_study(load_study(path), workers=1, out=out, analyse=False)
    (out / "chain" / "notes.txt").write_text("mine")
    result = invoke(path, "--out", out, "--overwrite", "--quiet")
    assert result.exit_code == 2
    assert "holds chain/notes.txt, which a study does not write" in result.stderr
    assert (out / "chain" / "notes.txt").read_text() == "mine"
    assert len(part_bytes(out)) == 8 * 3 + 1


def test_overwrite_replaces_a_study_and_resume_excludes_it(tmp_path):
    """--overwrite starts again (stale parts go); --overwrite with --resume is refused."""
    path = small_study(tmp_path)
    out = tmp_path / "out"
    run_study(load_study(path), workers=1, out=out, analyse=False)
    (out / "chain" / part_name(9, 0, 0)).write_bytes(b"stale")
    again = invoke(path, "--out", out, "--overwrite", "--workers", "1", "--quiet")
    assert again.exit_code == 0, again.output
    assert not (out / "chain" / part_name(9, 0, 0)).exists()
    both = invoke(path, "--out", out, "--overwrite", "--resume", "--quiet")
    assert both.exit_code == 2 and "exclude each other" in both.stderr


def test_refuses_a_run_directory(tmp_path):
    """A `marketsim run` results directory is not a study's: refused, naming its file."""
    path = small_study(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text("{}")
    (out / "chain.parquet").write_bytes(b"")
    result = invoke(path, "--out", out, "--overwrite", "--quiet")
    assert result.exit_code == 2 and "holds chain.parquet" in result.stderr


def test_an_experiment_edited_during_the_study_changes_nothing(tmp_path):
    """Tasks run the experiment the study loaded, not the file as it is now."""
    experiment = tmp_path / "exp.toml"
    base = f'extends = "{(EXPERIMENTS / "baseline.toml").as_posix()}"\n'
    experiment.write_text(base, encoding="utf-8")
    path = write_study(
        tmp_path,
        '[study]\nname = "s"\nreplications = 2\n[study.scenarios]\na = "exp.toml"\n'
        + f'[study.set]\n"experiment.steps" = {STEPS}\n',
    )
    run_study(load_study(path), workers=1, out=tmp_path / "before", analyse=False)
    study = load_study(path)
    experiment.write_text(base + "[agents.end_demand]\nelasticity = 0.3\n", encoding="utf-8")
    run_study(study, workers=1, out=tmp_path / "edited", analyse=False)
    assert part_bytes(tmp_path / "edited") == part_bytes(tmp_path / "before")


# --- the Python API and the command ---------------------------------------------------------


def test_study_results_read_back_and_analysis_files(tmp_path):
    """StudyResults reads the runs back; analysis files are None until written."""
    out = tmp_path / "out"
    results = run_study(small_study(tmp_path), workers=1, out=out, analyse=False)
    assert isinstance(results, StudyResults)
    assert results.outcomes is None and results.differences is None
    again = read_study(out)
    pd.testing.assert_frame_equal(again.runs("markets"), results.runs("markets"))
    assert again.manifest["study"]["name"] == "small"
    with pytest.raises(ValueError, match="table must be one of"):
        again.runs("firm")
    with pytest.raises(ResultsError):
        read_study(tmp_path)


def test_analysis_runs_at_the_end_when_installed(tmp_path):
    """With marketsim.analysis installed, the study ends with outcomes and paired differences."""
    pytest.importorskip("marketsim.analysis")
    results = run_study(small_study(tmp_path), workers=1, out=tmp_path / "out")
    assert results.outcomes is not None and len(results.outcomes)
    assert results.differences is not None
    assert set(results.differences["scenario"]) == {"bubble"}


def test_command_prints_what_it_wrote_and_checks_the_scheduler_option(tmp_path):
    """The command reports what it wrote; --scheduler without --executor dask is refused."""
    path = small_study(tmp_path, replications=1)
    result = invoke(path, "--out", tmp_path / "out", "--workers", "1")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"wrote {tmp_path / 'out'}/: 4 tasks")
    assert "chain/" in result.stdout
    wrong = invoke(path, "--out", tmp_path / "o2", "--scheduler", "tcp://x:1")
    assert wrong.exit_code == 2
    assert wrong.stderr.strip() == "error: --scheduler needs --executor dask"


def test_experiment_error_type_is_raised_by_the_api(tmp_path):
    """load_study raises ExperimentError whose key is the study key."""
    path = write_study(tmp_path, HEAD + SCENARIOS + '[study.set]\n"experiment.steps" = 0\n')
    with pytest.raises(ExperimentError) as caught:
        load_study(path)
    assert caught.value.key == 'study.set."experiment.steps"'


def test_shipped_studies_are_valid():
    """Every study in studies/ loads: its scenarios and factors are valid."""
    sizes = {}
    for path in sorted((ROOT / "studies").glob("*.toml")):
        study = load_study(path)
        sizes[study.name] = (len(study.design.points), study.replications)
    assert sizes["bubble_vs_no_bubble"] == (1, 20)
    assert sizes["power_lead_time"][0] == 6
    assert sizes["sensitivity"][0] == 64 * 7


def test_firm_level_output_is_a_fourth_dataset(tmp_path):
    """With [output] firm_level = true, firms/ is written and read back."""
    path = write_study(
        tmp_path,
        HEAD
        + SCENARIOS
        + f'[study.set]\n"experiment.steps" = {STEPS}\n"output.firm_level" = true\n',
    )
    results = run_study(load_study(path), workers=1, out=tmp_path / "out", analyse=False)
    firms = results.runs("firms")
    assert list(firms.columns[:3]) == ["scenario", "point", "replication"]
    assert len(firms) and set(firms.step) == set(range(STEPS))
    assert results.manifest["tables"] == ["sectors", "markets", "chain", "firms"]


def test_changing_only_the_reference_resumes_without_running(tmp_path):
    """The reference does not change the tables: resume runs nothing and records the new one."""
    path = small_study(tmp_path)
    out = tmp_path / "out"
    run_study(load_study(path), workers=1, out=out, analyse=False)
    path.write_text(path.read_text().replace('reference = "no_bubble"', 'reference = "bubble"'))
    results = run_study(load_study(path), workers=1, out=out, resume=True, analyse=False)
    assert results.timings.empty
    assert results.manifest["study"]["reference"] == "bubble"


def test_a_combination_of_valid_values_that_breaks_a_cross_check_is_caught_up_front(tmp_path):
    """Each value is valid alone; together growth >= discount rate is not: exit 2, no output."""
    path = write_study(
        tmp_path,
        HEAD
        + SCENARIOS
        + "[study.factors]\n"
        + '"agents.investor.long_run_growth_per_year" = [0.02, 0.08]\n'
        + '"agents.investor.discount_rate_per_year" = [0.1, 0.05]\n',
    )
    out = tmp_path / "out"
    result = invoke(path, "--out", out, "--quiet")
    assert result.exit_code == 2
    assert result.stderr.startswith(
        f'error: {path}: study.factors."agents.investor.long_run_growth_per_year": '
    )
    assert "at design point 3" in result.stderr
    assert not out.exists()
