"""Built-in sectors use only what a plugin can use: no sector knows another by name.

A module in marketsim/sectors/ may not import another sector's module (a module defining a
registered sector, a `Sector` subclass with a ``name``) at run time, nor look a sector up by
name: ``sectors["x"]``, ``sectors.get("x")``, ``"x" in sectors`` with a string literal. What
a sector needs to know about others it reads from its markets
(`marketsim.sectors.market_data`) or from documented hooks. Imports under
``if TYPE_CHECKING:`` (annotations only) are allowed. The source is parsed with `ast`.

``EXEMPT`` lists the modules still being moved behind hooks, with the reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SECTORS = Path(__file__).resolve().parent.parent / "marketsim" / "sectors"
EXEMPT: dict[str, str] = {}
"""Modules not checked yet, and why."""


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _defines_sector(tree: ast.Module) -> bool:
    """Whether the module defines a class with a non-empty string ``name`` (a sector)."""
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        for item in node.body:
            targets = (
                item.targets
                if isinstance(item, ast.Assign)
                else [item.target]
                if isinstance(item, ast.AnnAssign) and item.value is not None
                else []
            )
            value = getattr(item, "value", None)
            for target in targets:
                if (
                    isinstance(target, ast.Name)
                    and target.id == "name"
                    and isinstance(value, ast.Constant)
                    and isinstance(value.value, str)
                    and value.value
                ):
                    return True
    return False


SECTOR_MODULES = sorted(p.stem for p in SECTORS.glob("*.py") if _defines_sector(_tree(p)))


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    """ids of the nodes inside ``if TYPE_CHECKING:`` blocks."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and (
            (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
            or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING")
        ):
            for child in node.body:
                inside.update(id(n) for n in ast.walk(child))
    return inside


def _is_sectors(node: ast.AST) -> bool:
    """``sectors`` or ``<anything>.sectors``."""
    return (isinstance(node, ast.Name) and node.id == "sectors") or (
        isinstance(node, ast.Attribute) and node.attr == "sectors"
    )


def _literal(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def back_doors(path: Path) -> list[str]:
    """Each import of another sector module and each lookup of a sector by name, as text."""
    tree = _tree(path)
    typing_only = _type_checking_nodes(tree)
    found = []
    for node in ast.walk(tree):
        where = f"{path.name}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in typing_only:
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
            )
            if isinstance(node, ast.ImportFrom) and node.module == "marketsim.sectors":
                names = [f"marketsim.sectors.{a.name}" for a in node.names]
            for name in names:
                module = name.removeprefix("marketsim.sectors.")
                if module in SECTOR_MODULES and module != path.stem and name != module:
                    found.append(f"{where}: imports sector module {name}")
        elif isinstance(node, ast.Subscript) and _is_sectors(node.value):
            if _literal(node.slice):
                found.append(f"{where}: sectors[{node.slice.value!r}]")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and _is_sectors(node.func.value)
            and node.args
            and _literal(node.args[0])
        ):
            found.append(f"{where}: sectors.get({node.args[0].value!r})")
        elif (
            isinstance(node, ast.Compare)
            and _literal(node.left)
            and any(isinstance(op, ast.In | ast.NotIn) for op in node.ops)
            and any(_is_sectors(c) for c in node.comparators)
        ):
            found.append(f"{where}: {node.left.value!r} in sectors")
    return found


def test_sector_modules_are_found():
    """The check knows which modules are sectors (so an empty result means something)."""
    assert {"chip_vendor", "datacenter", "end_demand", "inference", "utility"} <= set(
        SECTOR_MODULES
    )
    assert "base" not in SECTOR_MODULES and "market_data" not in SECTOR_MODULES


@pytest.mark.parametrize(
    "path", sorted(p for p in SECTORS.glob("*.py") if p.name not in EXEMPT), ids=lambda p: p.name
)
def test_no_sector_knows_another_by_name(path):
    assert back_doors(path) == []


def test_the_check_catches_back_doors(tmp_path):
    """Each pattern is caught: an import of a sector module, a lookup by literal name."""
    source = tmp_path / "sneaky.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "from marketsim.sectors.chip_vendor import ChipVendor\n"
        "import marketsim.sectors.utility\n"
        "from marketsim.sectors import end_demand\n"
        "if TYPE_CHECKING:\n"
        "    from marketsim.sectors.datacenter import Datacenter\n"
        "def f(model, sectors):\n"
        "    a = model.sectors['chip_vendor']\n"
        "    b = sectors.get('end_demand')\n"
        "    c = 'utility' in model.sectors\n"
        "    d = model.markets.get('compute')\n"
        "    return a, b, c, d\n",
        encoding="utf-8",
    )
    found = back_doors(source)
    assert len(found) == 6, found
    assert not any("datacenter" in f for f in found)  # annotations only
    assert not any("compute" in f for f in found)  # a market by its good is market data
