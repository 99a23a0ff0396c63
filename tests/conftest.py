"""Shared fixtures: the baseline experiment and short experiment files built on it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

BASELINE = Path(__file__).resolve().parent.parent / "experiments" / "baseline.toml"


@pytest.fixture(scope="session")
def baseline_path() -> Path:
    """Absolute path of experiments/baseline.toml."""
    return BASELINE


@pytest.fixture
def write_experiment(tmp_path) -> Callable[..., Path]:
    """A factory writing an experiment file under ``tmp_path`` and returning its path.

    ``write_experiment(text, name="experiment.toml", base=True, steps=6)`` writes ``text``
    after a header that extends the absolute baseline (``base``) and sets
    ``experiment.steps`` (``steps``; pass None when ``text`` has its own ``[experiment]``).
    """

    def write(
        text: str = "", name: str = "experiment.toml", base: bool = True, steps: int | None = 6
    ) -> Path:
        header = f'extends = "{BASELINE.as_posix()}"\n' if base else ""
        if steps is not None:
            header += f"experiment.steps = {steps}\n"
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{header}\n{text}", encoding="utf-8")
        return path

    return write


@pytest.fixture
def short_baseline(write_experiment) -> Path:
    """An experiment file: the baseline cut to 6 steps."""
    return write_experiment(name="short.toml")
