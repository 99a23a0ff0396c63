"""``marketsim new-plugin``: write a pip-installable plugin package to start from.

`write_plugin` fills the templates of ``marketsim/templates/plugin/`` (shipped with the
package) for one kind of plugin and writes, under ``DIR/NAME``:

- ``pyproject.toml``: the distribution ``marketsim-NAME`` with the entry point
  ``[project.entry-points.marketsim] NAME = "NAME"``, so installing it makes every marketsim
  command load the plugin;
- ``NAME.py``: a working example of the kind that imports only `marketsim.plugin`;
- ``tests/test_NAME.py``: pytest tests that run the example experiment through marketsim and
  check its outcome;
- ``experiments/NAME.toml``: a small self-contained economy that uses the plugin (it names
  the plugin by module name, so it runs installed or with ``PYTHONPATH=.``);
- ``README.md``: how to install, test, run and change it.

NAME must be a Python identifier, ``DIR/NAME`` must not exist, and no importable module and
nothing marketsim or an installed plugin registers (sector, good, mechanism, table, result
column) may already use NAME: otherwise `ScaffoldError` (one line, exit code 2 from the
command) and nothing is written. The files are written into a temporary directory beside the
target and renamed into place at the end, so an interrupted or failed call leaves nothing
half-written, and no existing file is ever overwritten.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import keyword
import os
import shutil
import string
import tempfile
from dataclasses import dataclass
from pathlib import Path

from marketsim.errors import ExperimentError

TEMPLATES = Path(__file__).resolve().parent / "templates" / "plugin"
"""Where the templates live (package data of marketsim)."""

KINDS = ("sector", "policy", "mechanism", "metric")
"""Kinds of plugin ``new-plugin`` writes; the first is the default."""

SUMMARIES = {
    "sector": "A marketsim sector: a new kind of power seller beside the utilities.",
    "policy": "A marketsim policy: a per-unit tax on one good, partly passed on in prices.",
    "mechanism": "A marketsim clearing mechanism: equal split of demand, pro-rata rationing.",
    "metric": "A marketsim result column: the Herfindahl-Hirschman index of every market.",
}
"""One line per kind: the package's description and the first line of its README."""

RESERVED = {
    "agents",
    "markets",
    "plugins",
    "replication",
    "step",
    "sector",
    "market",
    "firm",
    "region",
    "marketsim",
}
"""Names marketsim keeps for itself (top-level keys, key columns, the package)."""


class ScaffoldError(ExperimentError):
    """``new-plugin`` cannot write the package: a bad NAME or a target that exists."""


@dataclass(frozen=True)
class GeneratedFile:
    """One file of the package: its path inside the package and the template it comes from."""

    path: str
    template: str


def package_files(name: str, kind: str) -> tuple[GeneratedFile, ...]:
    """The files of a plugin package of ``kind`` called ``name``, in writing order."""
    return (
        GeneratedFile("pyproject.toml", "pyproject.toml.tmpl"),
        GeneratedFile("README.md", "README.md.tmpl"),
        GeneratedFile(f"{name}.py", f"{kind}/module.py.tmpl"),
        GeneratedFile(f"experiments/{name}.toml", f"{kind}/experiment.toml.tmpl"),
        GeneratedFile(f"tests/test_{name}.py", f"{kind}/test.py.tmpl"),
    )


def check_identifier(name: str) -> None:
    """Refuse a NAME that is not a Python identifier (so it is also a safe folder name).

    Raises:
        ScaffoldError: what was expected and what NAME is.
    """
    if not (name.isascii() and name.isidentifier()) or keyword.iskeyword(name):
        raise ScaffoldError(
            "must be a Python identifier (ASCII letters, digits and _, not starting with a "
            f"digit, not a keyword), got {name!r}",
            "new-plugin",
            "NAME",
        )


def check_unused(name: str) -> None:
    """Refuse a NAME that marketsim keeps, an importable module or a registered name uses.

    Raises:
        ScaffoldError: what uses NAME already.
    """
    if name in RESERVED:
        raise ScaffoldError(
            f"{name!r} is reserved by marketsim; choose another name", "new-plugin", "NAME"
        )
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is not None:
        where = spec.origin or "a namespace package"
        raise ScaffoldError(
            f"a module named {name!r} is already importable ({where}); the plugin's module "
            "would clash with it: choose another name",
            "new-plugin",
            "NAME",
        )
    used = _registered_names()
    if name in used:
        raise ScaffoldError(
            f"{name!r} is already a {used[name]} of marketsim or an installed plugin; "
            "choose another name",
            "new-plugin",
            "NAME",
        )


def _registered_names() -> dict[str, str]:
    """Name -> what it is, for everything the built-in and installed plugins register."""
    from marketsim.experiment import collect_components
    from marketsim.plugins import plugin_manager

    components = collect_components(plugin_manager())
    used: dict[str, str] = {}
    for metric in components.metrics:
        used[metric.column] = f"{metric.table} column"
    for kind, names in (
        ("config table", components.tables),
        ("mechanism", components.mechanisms),
        ("good", components.goods),
        ("sector", components.sectors),
    ):
        used.update(dict.fromkeys(names, kind))
    return used


def _substitutions(name: str, kind: str) -> dict[str, str]:
    from marketsim.plugin import API_VERSION

    major, minor = API_VERSION.split(".")[:2]
    try:
        marketsim_version = importlib.metadata.version("marketsim")
    except importlib.metadata.PackageNotFoundError:  # running from a source tree
        marketsim_version = "0.1"
    fields = {
        "name": name,
        "kind": kind,
        "dist": "marketsim-" + name.replace("_", "-").strip("-"),
        "class_name": "".join(part.capitalize() for part in name.split("_")) or "Plugin",
        "summary": SUMMARIES[kind],
        "api_version": API_VERSION,
        "api_major_minor": f"{major}.{minor}",
        "marketsim_version": marketsim_version if marketsim_version[0].isdigit() else "0.1",
        "utilities": "1" if kind == "metric" else "2",  # the metric's example: a monopoly
    }
    economy = string.Template((TEMPLATES / "economy.toml.tmpl").read_text("utf-8"))
    about = string.Template((TEMPLATES / kind / "about.md.tmpl").read_text("utf-8"))
    fields["economy"] = economy.substitute(fields)
    fields["about"] = about.substitute(fields)
    return fields


def render(name: str, kind: str) -> dict[str, str]:
    """Path inside the package -> text of every file of a ``kind`` plugin called ``name``."""
    if kind not in KINDS:
        raise ScaffoldError(
            f"must be one of {', '.join(KINDS)}, got {kind!r}", "new-plugin", "--kind"
        )
    fields = _substitutions(name, kind)
    return {
        file.path: string.Template((TEMPLATES / file.template).read_text("utf-8")).substitute(
            fields
        )
        for file in package_files(name, kind)
    }


def write_plugin(name: str, kind: str = KINDS[0], directory: Path | str = ".") -> Path:
    """Write the plugin package ``directory/name`` and return its path.

    Raises:
        ScaffoldError: a bad name or kind, ``directory/name`` exists, or ``directory`` is
            not a directory; nothing is written then.
    """
    check_identifier(name)
    directory = Path(directory)
    target = directory / name
    if target.exists() or target.is_symlink():
        raise ScaffoldError(
            f"{target} exists; new-plugin never overwrites files: choose another NAME or --dir",
            "new-plugin",
        )
    check_unused(name)
    files = render(name, kind)
    if directory.exists() and not directory.is_dir():
        raise ScaffoldError(
            f"expected a directory, got the file {directory}", "new-plugin", "--dir"
        )
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ScaffoldError(
            f"cannot create {directory}: {error.strerror}", "new-plugin", "--dir"
        ) from None
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=directory))
    try:
        for relative, text in files.items():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        os.chmod(staging, 0o777 & ~_umask())
        try:
            os.rename(staging, target)  # fails if target appeared meanwhile with any content
        except OSError:
            raise ScaffoldError(
                f"{target} exists; new-plugin never overwrites files", "new-plugin"
            ) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask
