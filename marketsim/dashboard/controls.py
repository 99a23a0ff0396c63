"""The dashboard's levers: controls generated from the experiment schema, and their checks.

Each lever is a key of an experiment table (`CONTROL_KEYS`); its label, unit, valid range
and explanation come from the key's `marketsim.schema.Param`, its value from the loaded
experiment. A value typed on the page is checked exactly as ``marketsim run FILE --set
KEY=VALUE`` checks it (`marketsim.load_experiment` with the text as an override), so an
invalid value gets the very line the command line prints (``error: --set: KEY: ...``).

`Levers` holds one browser session's choice: the scenario file to start from, the overrides
that passed, and the last experiment they validated to. A rejected value leaves all three as
they were, so the model on the page, and the next Reset, keep the last good state. Nothing
here imports Solara.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from marketsim.errors import ExperimentError
from marketsim.errors import MarketsimError
from marketsim.errors import one_line
from marketsim.experiment import Experiment
from marketsim.experiment import load_experiment
from marketsim.schema import Param

CONTROL_KEYS = (
    "agents.end_demand.elasticity",
    "agents.inference.efficiency_gain",
    "agents.inference.efficiency_gain_step",
    "agents.utility.interconnection_lead_months",
    "agents.investor.intensity_of_choice",
    "agents.chip_vendor.max_lerner",
    "agents.network_vendor.max_lerner",
    "agents.datacenter.max_lerner",
    "agents.inference.max_lerner",
    "agents.datacenter.useful_life_months",
)
"""The parameters researchers argue about: demand elasticity, the efficiency gain and its
month, the grid's interconnection lead time, investors' intensity of choice, each
sector's largest markup (Lerner index) and servers' useful life."""

DASHBOARD_OVERRIDES = ("output.firm_level=false",)
"""Always applied: the dashboard draws sector, market and chain columns, never firm rows."""

EXPERIMENT_VARIABLE = "MARKETSIM_DASHBOARD_EXPERIMENT"
"""Environment variable naming the experiment file the served page starts from."""

DEFAULT_EXPERIMENT = Path(__file__).resolve().parents[2] / "experiments" / "baseline.toml"
"""The baseline shipped with the source tree (``pip install -e .``)."""


def error_line(error: MarketsimError) -> str:
    """The line ``marketsim`` prints on stderr for ``error`` (`marketsim.cli.user_errors`)."""
    line = error.line() if isinstance(error, ExperimentError) else str(error)
    return one_line(f"error: {line}")


@dataclass(frozen=True)
class Control:
    """One lever on the page.

    Attributes:
        key: the dotted experiment key, e.g. ``agents.end_demand.elasticity``.
        label: what the page calls it (the key without ``agents.``).
        unit: the key's unit (empty if it has none).
        range_text: its valid range, e.g. ``>= 0 and <= 10``.
        doc: what it means (the schema's text).
        kind: ``float`` or ``int``.
        value: its value in the current experiment.
        low: the lowest valid value (None: unbounded below).
        high: the highest valid value (None: unbounded above).
    """

    key: str
    label: str
    unit: str
    range_text: str
    doc: str
    kind: type
    value: float | int
    low: float | None
    high: float | None

    @property
    def text(self) -> str:
        """The value as typed in a field (TOML syntax, as ``--set`` takes it)."""
        if self.kind is int:
            return str(int(self.value))
        return repr(float(self.value))

    @property
    def hint(self) -> str:
        """Unit and valid range, shown under the field, e.g. ``months; valid: >= 1 and <= 240``."""
        parts = [self.unit] if self.unit else []
        if self.range_text:
            parts.append(f"valid: {self.range_text}")
        return "; ".join(parts)


def _bounds(param: Param) -> tuple[float | None, float | None]:
    low = param.ge if param.ge is not None else param.gt
    high = param.le if param.le is not None else param.lt
    return low, high


def controls_for(experiment: Experiment) -> list[Control]:
    """The levers of ``experiment``, in `CONTROL_KEYS` order, with their current values.

    A key whose sector is not in the experiment is left out.
    """
    sector_tables = experiment.components.registry().sector_tables
    controls = []
    for key in CONTROL_KEYS:
        _, sector, name = key.split(".")
        if sector not in experiment.config["agents"] or sector not in sector_tables:
            continue
        param = sector_tables[sector].params[name]
        low, high = _bounds(param)
        controls.append(
            Control(
                key=key,
                label=f"{sector}.{name}",
                unit=param.unit,
                range_text=param.range_text(),
                doc=param.doc,
                kind=param.kind,
                value=experiment.config["agents"][sector][name],
                low=low,
                high=high,
            )
        )
    return controls


def scenario_files(experiment_path: str | Path) -> list[Path]:
    """The scenario files beside ``experiment_path`` (``*.toml`` in its directory, sorted;
    sub-directories such as ``experiments/classics`` are not scenarios of this chain)."""
    path = Path(experiment_path)
    return sorted({*path.parent.glob("*.toml"), path})


def load_for_dashboard(path: str | Path, overrides: dict[str, str]) -> Experiment:
    """The experiment the dashboard runs: ``path`` with ``overrides`` (key -> TOML text).

    Raises:
        ExperimentError: as ``marketsim run path --set key=text ...`` would.
    """
    texts = [*DASHBOARD_OVERRIDES, *(f"{key}={text}" for key, text in overrides.items())]
    return load_experiment(path, texts)


class Levers:
    """One session's scenario and overrides, and the last experiment they validated to.

    Args:
        path: the scenario file to start from.

    Raises:
        ExperimentError: ``path`` itself is invalid (the command refuses to start).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.overrides: dict[str, str] = {}
        self.experiment = load_for_dashboard(self.path, {})
        self.applied_sha256 = self.experiment.sha256
        """The experiment the page's model was built from (Reset builds `experiment`)."""

    @property
    def scenarios(self) -> list[Path]:
        """Scenario files to choose from (`scenario_files`)."""
        return scenario_files(self.path)

    def controls(self) -> list[Control]:
        """The levers with the last good experiment's values (`controls_for`)."""
        return controls_for(self.experiment)

    def set_value(self, key: str, text: str) -> str | None:
        """Set lever ``key`` to ``text`` if the experiment stays valid.

        Returns:
            None when accepted; otherwise the line the command line prints for
            ``--set key=text``, and nothing changes.
        """
        overrides = {**self.overrides, key: text.strip()}
        try:
            experiment = load_for_dashboard(self.path, overrides)
        except MarketsimError as error:
            return error_line(error)
        self.overrides, self.experiment = overrides, experiment
        return None

    def choose_scenario(self, path: str | Path) -> str | None:
        """Start from scenario ``path`` (its own values; earlier overrides dropped).

        Returns:
            None when accepted; otherwise the line the command line prints for the file,
            and nothing changes.
        """
        try:
            experiment = load_for_dashboard(path, {})
        except MarketsimError as error:
            return error_line(error)
        self.path, self.overrides, self.experiment = Path(path), {}, experiment
        return None

    @property
    def pending(self) -> bool:
        """Whether accepted changes wait for Reset (the model runs an older experiment)."""
        return self.experiment.sha256 != self.applied_sha256
