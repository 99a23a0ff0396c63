"""The public plugin API: everything a plugin author imports, from one module.

A plugin imports from here and nowhere else in marketsim::

    from marketsim.plugin import Param
    from marketsim.plugin import Sector
    from marketsim.plugin import hookimpl

What is here, by topic (docs/plugins.md, "The plugin API", has one line per name):

- hooks: `hookimpl`;
- sectors: `Sector`, `firm_schema`, the equipment-vendor base `EquipmentVendor` with
  `vendor_params` and `initial_capacity`, and the helpers the built-in sectors use
  (`smooth`, `smoothing_param`, `shift_pipeline`, `bounded_power`, `capped_quotient`,
  `HOURS_PER_MONTH`, `MAX_RESPONSE`, `QUOTIENT_CAP`), investment (`capex_budget`,
  `affordable_share`) and entry (`starting_capacity`, `operating_mean`);
- recipes (what a producing sector needs per unit, as data): `Input`, `Recipe`, `PER`;
- what a sector may learn about others, through the markets it trades in:
  `opening_reference_price`, `demand_at_price`;
- parameters: `Param`, `TableSchema`, `REQUIRED`;
- goods, markets and mechanisms: `GoodSpec`, `MechanismSpec`, `Market`, `MarketBook`,
  `ClearingOutcome`, the built-in mechanisms `POSTED_PRICE` and `CALL_AUCTION` with their
  clearing functions `clear_posted_price` and `clear_call_auction`;
- pricing and clearing kernels (numba): `posted_price_clear` (and `posted_price_clear_indexed`
  with `seller_slots`), `tatonnement_price`,
  `lerner_scarcity_price`, `call_auction`, the capital market's belief map
  `brock_hommes_step`, and the price rule built on them
  (`competition_params`, `lerner_scarcity_target`, `partial_adjustment`, `smoothed_shares`,
  `equal_shares`, `buyers_value`, `capped_at_value`);
- metrics: `MetricSpec`, `by_sector`, `ratio`;
- the ledger: `transfer`, `outside_account_index`, `OUTSIDE_ACCOUNTS`, `FLOWS`;
- the equity market's data a capital-market plugin publishes: `EquityMarket`;
- running and testing: `load_experiment`, `run`, `Experiment`, `Results`, `SupplyChainModel`;
- errors and warnings: `MarketsimError`, `ExperimentError`, `PluginError`, `LedgerError`,
  `MarketsimWarning`;
- versioning: `API_VERSION`, `require_api`.

Versioning (semantic, independent of the package version): the names in `__all__` and their
documented signatures are stable within a major version of `API_VERSION`. A minor version
adds names or optional arguments; a patch version fixes behaviour without changing a
signature. A name to be removed is first deprecated: it keeps working for at least one
minor version and warns (`DeprecationWarning`) when imported, and it is removed only at the
next major version. `tests/test_plugin_api.py` pins `__all__`, so no name changes by
accident.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from marketsim.diagnostics import MarketsimWarning
from marketsim.entry import operating_mean
from marketsim.entry import starting_capacity
from marketsim.equity import EquityMarket
from marketsim.errors import ExperimentError
from marketsim.errors import LedgerError
from marketsim.errors import MarketsimError
from marketsim.errors import PluginError
from marketsim.experiment import Experiment
from marketsim.experiment import load_experiment
from marketsim.finance import affordable_share
from marketsim.finance import capex_budget
from marketsim.ledger import OUTSIDE_ACCOUNTS
from marketsim.ledger import Flows
from marketsim.markets.beliefs import brock_hommes_step
from marketsim.markets.kernels import call_auction
from marketsim.markets.kernels import lerner_scarcity_price
from marketsim.markets.kernels import posted_price_clear
from marketsim.markets.kernels import posted_price_clear_indexed
from marketsim.markets.kernels import tatonnement_price
from marketsim.markets.kernels_rounds import seller_slots
from marketsim.markets.market import ClearingOutcome
from marketsim.markets.market import GoodSpec
from marketsim.markets.market import Market
from marketsim.markets.market import MarketBook
from marketsim.markets.market import MechanismSpec
from marketsim.markets.mechanisms import CALL_AUCTION
from marketsim.markets.mechanisms import POSTED_PRICE
from marketsim.markets.mechanisms import clear_call_auction
from marketsim.markets.mechanisms import clear_posted_price
from marketsim.metrics import MetricSpec
from marketsim.metrics import by_sector
from marketsim.metrics import ratio
from marketsim.model import SupplyChainModel
from marketsim.plugins import hookimpl
from marketsim.recipes import PER
from marketsim.recipes import Input
from marketsim.recipes import Recipe
from marketsim.results import Results
from marketsim.runner import run
from marketsim.schema import REQUIRED
from marketsim.schema import Param
from marketsim.schema import TableSchema
from marketsim.sectors.base import HOURS_PER_MONTH
from marketsim.sectors.base import MAX_RESPONSE
from marketsim.sectors.base import QUOTIENT_CAP
from marketsim.sectors.base import Sector
from marketsim.sectors.base import bounded_power
from marketsim.sectors.base import capped_quotient
from marketsim.sectors.base import firm_schema
from marketsim.sectors.base import shift_pipeline
from marketsim.sectors.base import smooth
from marketsim.sectors.base import smoothing_param
from marketsim.sectors.competition import buyers_value
from marketsim.sectors.competition import capped_at_value
from marketsim.sectors.competition import competition_params
from marketsim.sectors.competition import equal_shares
from marketsim.sectors.competition import lerner_scarcity_target
from marketsim.sectors.competition import partial_adjustment
from marketsim.sectors.competition import smoothed_shares
from marketsim.sectors.market_data import demand_at_price
from marketsim.sectors.market_data import opening_reference_price
from marketsim.sectors.vendor import EquipmentVendor
from marketsim.sectors.vendor import initial_capacity
from marketsim.sectors.vendor import vendor_params

API_VERSION = "1.2.0"
"""Version of this API (semver): names in `__all__` are stable within a major version."""

FLOWS: tuple[str, ...] = Flows.NAMES
"""Flow names a ledger posting can carry (``"revenue"``, ``"cost_of_goods"``, ``"capex"``, ...)."""

_DEPRECATED: dict[str, tuple[Any, str]] = {}
"""Deprecated name -> (its value, what to use instead); importing one warns (see module doc)."""


def __getattr__(name: str) -> Any:
    """Deprecated names still resolve, with a `DeprecationWarning` saying what replaces them."""
    if name in _DEPRECATED:
        value, instead = _DEPRECATED[name]
        warnings.warn(
            f"marketsim.plugin.{name} is deprecated (API {API_VERSION}); use {instead}",
            DeprecationWarning,
            stacklevel=2,
        )
        return value
    raise AttributeError(f"module 'marketsim.plugin' has no attribute {name!r}")


def _version_tuple(version: str) -> tuple[int, int, int]:
    parts = version.split(".")
    if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"expected an API version like '1.0' or '1.0.0', got {version!r}")
    numbers = [int(p) for p in parts] + [0] * (3 - len(parts))
    return numbers[0], numbers[1], numbers[2]


def require_api(version: str) -> None:
    """Stop loading a plugin written for a newer or incompatible API, with a clear message.

    Call it at the top of a plugin module, with the `API_VERSION` the plugin was written
    against (``"1.0"`` or ``"1.0.0"``). It passes when this marketsim's API has the same
    major version and is at least as new; otherwise the plugin fails to load with
    ``PluginError: plugin needs marketsim.plugin API X, this marketsim has Y``.

    Raises:
        PluginError: the installed API is of another major version, or older.
        ValueError: ``version`` is not a version number.
    """
    wanted = _version_tuple(version)
    have = _version_tuple(API_VERSION)
    if wanted[0] != have[0] or wanted > have:
        raise PluginError(
            f"plugin needs marketsim.plugin API {version} (same major version, this or newer); "
            f"this marketsim has {API_VERSION}"
        )


def outside_account_index(model: SupplyChainModel, name: str) -> int:
    """Ledger account index of the outside account ``name`` (``"taxes"``, ``"fuel"``, ...).

    Outside accounts are the sources and sinks of cash and goods that are not simulated
    firms: `OUTSIDE_ACCOUNTS` lists the built-in ones, every experiment has them; plugins may
    register more.

    Raises:
        ValueError: the model's ledger has no account of that name (the message lists the
            outside accounts it has).
    """
    ledger = model.ledger
    try:
        return ledger.account(name)
    except KeyError:
        known = getattr(ledger, "outside_accounts", None) or [
            a for a in ledger.account_names if a in OUTSIDE_ACCOUNTS
        ]
        raise ValueError(
            f"no outside account {name!r}; the outside accounts are {', '.join(known)}"
        ) from None


def transfer(model: SupplyChainModel, asset: str, source, destination, amounts, flow: str) -> None:
    """Post ``amounts`` of ``asset`` from ``source`` to ``destination``, booked under ``flow``.

    The one way a plugin moves cash or goods outside a sector's own ``pay`` and
    ``move_goods``: every posting goes through the ledger, so the books balance and the
    income statements see it.

    Args:
        model: the model.
        asset: ``"cash"`` (USD) or a good's name (in the good's unit).
        source: where it comes from: an outside account's name, an account index, or an
            array of account indices (e.g. a sector's ``accounts``), one per amount.
        destination: where it goes, in the same forms.
        amounts: amount per posting (finite, >= 0), in the asset's unit; a number or an
            array matching ``source``/``destination``.
        flow: one of `FLOWS` (``"cost_of_goods"``, ``"capex"``, ``"opex"``, ``"tax"``, ...);
            the payer books it under this flow, the receiver too.

    Raises:
        ValueError: an unknown asset, outside account or flow.
        LedgerError: an amount is NaN, infinite or negative.
    """
    ledger = model.ledger
    if asset not in ledger.asset_names:
        raise ValueError(f"unknown asset {asset!r}; the assets are {', '.join(ledger.asset_names)}")
    if flow not in FLOWS:
        raise ValueError(f"unknown flow {flow!r}; the flows are {', '.join(FLOWS)}")
    ledger.transfer(
        ledger.asset(asset),
        _account_indices(model, source),
        _account_indices(model, destination),
        amounts,
        FLOWS.index(flow),
    )


def _account_indices(model: SupplyChainModel, accounts) -> Any:
    """An outside account's name as its index; indices (one or an array) as they are."""
    if isinstance(accounts, str):
        return outside_account_index(model, accounts)
    return np.asarray(accounts, dtype=np.int64)


__all__ = [
    "API_VERSION",
    "CALL_AUCTION",
    "ClearingOutcome",
    "EquipmentVendor",
    "EquityMarket",
    "Experiment",
    "ExperimentError",
    "FLOWS",
    "GoodSpec",
    "HOURS_PER_MONTH",
    "Input",
    "LedgerError",
    "MAX_RESPONSE",
    "Market",
    "MarketBook",
    "MarketsimError",
    "MarketsimWarning",
    "MechanismSpec",
    "MetricSpec",
    "OUTSIDE_ACCOUNTS",
    "PER",
    "POSTED_PRICE",
    "Param",
    "PluginError",
    "QUOTIENT_CAP",
    "REQUIRED",
    "Recipe",
    "Results",
    "Sector",
    "SupplyChainModel",
    "TableSchema",
    "affordable_share",
    "bounded_power",
    "brock_hommes_step",
    "buyers_value",
    "by_sector",
    "call_auction",
    "capex_budget",
    "capped_at_value",
    "capped_quotient",
    "clear_call_auction",
    "clear_posted_price",
    "competition_params",
    "demand_at_price",
    "equal_shares",
    "firm_schema",
    "hookimpl",
    "initial_capacity",
    "lerner_scarcity_price",
    "lerner_scarcity_target",
    "load_experiment",
    "opening_reference_price",
    "operating_mean",
    "outside_account_index",
    "partial_adjustment",
    "posted_price_clear",
    "posted_price_clear_indexed",
    "ratio",
    "require_api",
    "run",
    "seller_slots",
    "shift_pipeline",
    "smooth",
    "smoothed_shares",
    "smoothing_param",
    "starting_capacity",
    "tatonnement_price",
    "transfer",
    "vendor_params",
]
