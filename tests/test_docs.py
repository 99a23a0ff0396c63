"""The documentation says what the code does: generated key reference, hooks, quick start."""

from __future__ import annotations

import re
from pathlib import Path

from marketsim import hookspecs
from marketsim.schema_docs import render

ROOT = Path(__file__).resolve().parent.parent


def test_experiment_key_reference_is_current():
    """docs/experiments.md is exactly what the schemas generate (regenerate it if not)."""
    written = (ROOT / "docs" / "experiments.md").read_text(encoding="utf-8")
    assert written == render(), "run: python -m marketsim.schema_docs > docs/experiments.md"


def test_every_hook_is_documented_for_plugin_authors():
    """Each hook in hookspecs.py is described in docs/plugins.md."""
    text = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    hooks = [name for name in dir(hookspecs) if name.startswith("marketsim_")]
    assert hooks
    missing = [name for name in hooks if name not in text]
    assert not missing, missing


def test_readme_quick_start_is_two_commands():
    """README's quick start holds exactly two command lines: run the baseline, run the tests."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```\n(.*?)```", section, re.S).group(1)
    commands = [line for line in block.splitlines() if line.strip()]
    assert commands == [
        "pip install -e '.[dashboard]' && marketsim run experiments/baseline.toml",
        "pip install -e '.[test]' && pytest",
    ]


def test_ci_runs_the_readme_test_command():
    """.ci/run runs the same test command as the README: the same install, then pytest (the
    install for every Python first, then the tests under every Python at once)."""
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "pip install -e '.[test]' && pytest" in readme
    install = script.index("pip install --quiet -e '.[test]'")
    tests = script.index("  pytest -q -p no:cacheprovider\n")
    assert install < tests


def test_model_description_parameter_tables_are_current():
    """Every parameter table in docs/model.md matches the schema it documents."""
    from marketsim.experiment import collect_components
    from marketsim.plugins import plugin_manager
    from marketsim.schema_docs import parameter_table

    text = (ROOT / "docs" / "model.md").read_text(encoding="utf-8")
    components = collect_components(plugin_manager())
    schemas = [*components.tables.values(), *(c.schema for c in components.sectors.values())]
    schemas += [m.schema for m in components.mechanisms.values() if m.schema.params]
    stale = [schema.doc for schema in schemas if parameter_table(schema) not in text]
    assert not stale, f"regenerate these tables in docs/model.md: {stale}"


def test_every_readme_python_snippet_runs(tmp_path):
    """Each ```python block of the README runs as written, in a fresh interpreter."""
    import os
    import subprocess
    import sys

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    snippets = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert snippets
    for folder in ("experiments", "studies", "plugins"):
        (tmp_path / folder).symlink_to(ROOT / folder)
    environment = {**os.environ, "MPLBACKEND": "Agg"}
    for snippet in snippets:
        completed = subprocess.run(
            [sys.executable, "-c", snippet],
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert completed.returncode == 0, f"{snippet}\n{completed.stderr[-2000:]}"
