"""`marketsim new-plugin`: the generated package installs, loads by its entry point and passes
its own tests as generated; bad names and existing targets are refused with one line.

The generated tests run in a subprocess (so nothing the plugin registers leaks into this
process). The entry point is proven in a throwaway virtual environment layered on this one
(`throwaway_venv`): installing into the shared environment would make the plugin load in
every other test.
"""

from __future__ import annotations

import importlib.metadata
import os
import site
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from marketsim.cli import cli
from marketsim.scaffold import KINDS
from marketsim.scaffold import TEMPLATES
from marketsim.scaffold import write_plugin

ROOT = Path(__file__).resolve().parent.parent
GENERATED_TEST_TIMEOUT = 900
"""Seconds a generated package's tests may take in a subprocess (they take a few)."""


def invoke(*args):
    """Run the CLI in-process and return click's result (stdout and stderr apart)."""
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_line_error(result) -> str:
    """The single stderr line of a refused command (exit code 2, no traceback)."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def tree(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` (relative path -> bytes)."""
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()
    }


def clean_environment() -> dict[str, str]:
    """This process's environment without variables that would change what pytest loads."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS")}
    env["MPLBACKEND"] = "Agg"
    return env


def run_generated_tests(python: str, package: Path) -> subprocess.CompletedProcess:
    """The generated package's own tests, run as its README says (``pytest`` in its folder)."""
    return subprocess.run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=package,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=GENERATED_TEST_TIMEOUT,
    )


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_passes_its_own_tests_as_generated(kind, tmp_path):
    """Generate, then run the package's tests without installing it (its pyproject puts the
    package folder on pytest's path; the example experiment names the module)."""
    name = f"example_{kind}"
    package = write_plugin(name, kind, tmp_path)
    done = run_generated_tests(sys.executable, package)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert " passed" in done.stdout and "failed" not in done.stdout, done.stdout[-2000:]
    assert name not in {e.name for e in importlib.metadata.entry_points(group="marketsim")}


def test_the_package_has_an_entry_point_and_imports_only_the_plugin_api(tmp_path):
    for kind in KINDS:
        package = write_plugin(f"pkg_{kind}", kind, tmp_path)
        assert set(tree(package)) == {
            "pyproject.toml",
            "README.md",
            f"pkg_{kind}.py",
            f"experiments/pkg_{kind}.toml",
            f"tests/test_pkg_{kind}.py",
        }
        project = tomllib.loads((package / "pyproject.toml").read_text())
        assert project["project"]["entry-points"]["marketsim"] == {f"pkg_{kind}": f"pkg_{kind}"}
        assert project["project"]["name"] == f"marketsim-pkg-{kind}"
        assert project["tool"]["setuptools"]["py-modules"] == [f"pkg_{kind}"]
        for source in (package / f"pkg_{kind}.py", package / "tests" / f"test_pkg_{kind}.py"):
            imports = [
                line.split()[1]
                for line in source.read_text().splitlines()
                if line.startswith(("import ", "from "))
            ]
            internal = [m for m in imports if m.startswith("marketsim") and m != "marketsim.plugin"]
            assert not internal, (source.name, internal)
        experiment = tomllib.loads((package / "experiments" / f"pkg_{kind}.toml").read_text())
        assert experiment["plugins"] == [f"pkg_{kind}"]


def test_generated_code_is_ruff_clean(tmp_path):
    """Every kind, with a short and a long name, passes the project's own lint settings."""
    for kind in KINDS:
        for name in (f"x_{kind}", f"a_rather_long_plugin_name_for_the_{kind}_kind"):
            write_plugin(name, kind, tmp_path)
    for package in sorted(tmp_path.iterdir()):
        for command in (["check", "--no-cache", "."], ["format", "--check", "--no-cache", "."]):
            done = subprocess.run(
                [sys.executable, "-m", "ruff", *command],
                cwd=package,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, (package.name, done.stdout, done.stderr)


def test_cli_writes_the_package_and_says_what_next(tmp_path):
    result = invoke("new-plugin", "cooling", "--kind", "policy", "--dir", tmp_path / "new")
    assert result.exit_code == 0, result.output
    package = tmp_path / "new" / "cooling"
    assert (package / "cooling.py").is_file()
    assert f"wrote {package}/" in result.stdout
    assert "pip install -e . && pytest" in result.stdout
    assert [p.name for p in (tmp_path / "new").iterdir()] == ["cooling"]  # no staging left


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("my-plugin", "NAME: must be a Python identifier"),
        ("1cooling", "NAME: must be a Python identifier"),
        ("class", "NAME: must be a Python identifier"),
        ("kühlung", "NAME: must be a Python identifier"),
        ("json", "a module named 'json' is already importable"),
        ("numpy", "a module named 'numpy' is already importable"),
        ("utility", "'utility' is already a sector"),
        ("posted_price", "'posted_price' is already a mechanism"),
        ("finance", "'finance' is already a config table"),
        ("gross_margin", "'gross_margin' is already a sectors column"),
        ("agents", "'agents' is reserved"),
    ],
)
def test_a_bad_name_is_one_line_and_writes_nothing(name, expected, tmp_path):
    line = one_line_error(invoke("new-plugin", name, "--dir", tmp_path))
    assert line.startswith("error: new-plugin: ")
    assert expected in line
    assert list(tmp_path.iterdir()) == []


def test_an_existing_target_is_never_overwritten(tmp_path):
    mine = tmp_path / "cooling"
    mine.mkdir()
    (mine / "cooling.py").write_text("# my own work\n")
    before = tree(tmp_path)
    line = one_line_error(invoke("new-plugin", "cooling", "--dir", tmp_path))
    assert line == (
        f"error: new-plugin: {mine} exists; new-plugin never overwrites files: "
        "choose another NAME or --dir"
    )
    assert tree(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cooling"]


def test_an_existing_empty_folder_is_refused_too(tmp_path):
    (tmp_path / "cooling").mkdir()
    one_line_error(invoke("new-plugin", "cooling", "--dir", tmp_path))
    assert list((tmp_path / "cooling").iterdir()) == []


def test_a_file_as_dir_is_refused(tmp_path):
    (tmp_path / "notes").write_text("not a folder\n")
    line = one_line_error(invoke("new-plugin", "cooling", "--dir", tmp_path / "notes"))
    assert line == f"error: new-plugin: --dir: expected a directory, got the file {tmp_path}/notes"
    assert (tmp_path / "notes").read_text() == "not a folder\n"


def test_an_unknown_kind_is_one_line(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "marketsim", "new-plugin", "cooling", "--kind", "bank"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert "'bank' is not one of 'sector', 'policy', 'mechanism', 'metric'" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_templates_ship_with_the_package():
    """Every template file is matched by pyproject's package-data, so wheels and sdists
    carry them (`new-plugin` works from an installed marketsim, not only a checkout)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = project["tool"]["setuptools"]["package-data"]["marketsim"]
    package = ROOT / "marketsim"
    shipped = {p for pattern in patterns for p in package.glob(pattern)}
    templates = {p for p in TEMPLATES.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert templates, TEMPLATES
    assert templates <= shipped, sorted(str(p) for p in templates - shipped)


def throwaway_venv(path: Path) -> Path:
    """A virtual environment at ``path`` that sees this environment's packages behind its own.

    ``python -m venv --system-site-packages`` from inside a virtual environment would see the
    base interpreter's packages, not this environment's (where marketsim is installed), so a
    ``.pth`` file adds this environment's site directories after the new one's own (their
    ``.pth`` files run too, so an editable marketsim is found). Installing into the new
    environment leaves this one untouched. Returns its python.
    """
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=300
    )
    python = path / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    ours = [*site.getsitepackages(), sysconfig.get_paths()["purelib"]]
    lines = [f"import site; site.addsitedir({d!r})" for d in dict.fromkeys(ours)]
    Path(purelib, "_marketsim_parent_environment.pth").write_text("\n".join(lines) + "\n")
    return python


def test_the_package_installs_and_its_entry_point_loads_it(tmp_path):
    """pip-install the generated package (offline) into a throwaway environment: marketsim
    finds it by its entry point, and the package's own tests pass there."""
    package = write_plugin("scaffolded_gen", "sector", tmp_path)
    python = throwaway_venv(tmp_path / "venv")
    install = subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index"]
        + ["--disable-pip-version-check", str(package)],
        capture_output=True,
        text=True,
        timeout=600,
        env=clean_environment(),
    )
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-2000:]

    listed = subprocess.run(
        [python, "-m", "marketsim", "plugins"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=clean_environment(),
    )
    assert listed.returncode == 0, listed.stderr
    assert "scaffolded_gen  0.1.0  (entry point)" in listed.stdout.splitlines()
    assert "    marketsim_register_sectors" in listed.stdout.splitlines()

    done = run_generated_tests(str(python), package)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "failed" not in done.stdout

    # this environment is untouched: the plugin is installed in the throwaway one only
    assert "scaffolded_gen" not in {
        e.name for e in importlib.metadata.entry_points(group="marketsim")
    }
