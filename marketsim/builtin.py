"""The core as its own first plugin: built-in goods, sectors, mechanisms, metrics, tables.

Everything registered here goes through the same hooks a third-party plugin implements;
nothing in the engine knows a built-in sector by name.
"""

from __future__ import annotations

from marketsim.bottleneck import BOTTLENECK_METRICS
from marketsim.credit import CREDIT_METRICS
from marketsim.entry import ENTRY_METRICS
from marketsim.finance import FINANCE_TABLE
from marketsim.graph import GRAPH_TABLE
from marketsim.ledger import OUTSIDE_ACCOUNT_DOCS
from marketsim.markets.market import GoodSpec
from marketsim.markets.mechanisms import CALL_AUCTION
from marketsim.markets.mechanisms import POSTED_PRICE
from marketsim.metrics import BUILTIN_METRICS
from marketsim.plugins import hookimpl
from marketsim.schema import Param
from marketsim.schema import TableSchema
from marketsim.sectors.chip_vendor import ChipVendor
from marketsim.sectors.datacenter import Datacenter
from marketsim.sectors.end_demand import EndDemand
from marketsim.sectors.inference import Inference
from marketsim.sectors.investor import CAPITAL_MARKET_METRICS
from marketsim.sectors.investor import Investor
from marketsim.sectors.investor import marketsim_buy_new_shares  # noqa: F401 (a hookimpl)
from marketsim.sectors.investor import marketsim_receive_dividends  # noqa: F401 (a hookimpl)
from marketsim.sectors.investor import marketsim_value_firms  # noqa: F401 (a hookimpl)
from marketsim.sectors.network_vendor import NetworkVendor
from marketsim.sectors.utility import Utility
from marketsim.technology import TECHNOLOGY_METRICS
from marketsim.technology import TECHNOLOGY_TABLE

GOODS = (
    GoodSpec(
        "accelerators",
        "accelerators",
        "USD per accelerator",
        doc="GPUs/ASICs for AI, sold by chip vendors to data centers",
    ),
    GoodSpec(
        "network_kits",
        "network kits",
        "USD per kit",
        doc="optics and switch ports for one accelerator",
    ),
    GoodSpec(
        "power",
        "MW contracted for the month",
        "USD per MWh",
        doc="electric power; energy billed at the utility's load factor x 730 h per MW",
    ),
    GoodSpec(
        "compute",
        "accelerator-hours",
        "USD per accelerator-hour",
        doc="rented accelerator time, sold by data centers",
    ),
    GoodSpec(
        "tokens",
        "million tokens",
        "USD per million tokens",
        doc="inference output, sold by inference firms to end customers",
    ),
)

EXPERIMENT_TABLE = TableSchema(
    doc="The run: name, seed, length.",
    params={
        "name": Param(str, doc="the experiment's name (default output: results/<name>)"),
        "seed": Param(
            int, 0, "seed of every random stream (graph, demand noise)", ge=0, le=2**63 - 1
        ),
        "steps": Param(int, 120, "number of steps to simulate", "steps", ge=1, le=100_000),
        "step_months": Param(
            int,
            1,
            "length of a step; every rate in the model is monthly, so only 1 is supported",
            "months",
            choices=(1,),
        ),
        "replications": Param(
            int,
            1,
            "independent runs with seeds spawned from the experiment's seed",
            "runs",
            ge=1,
            le=10_000,
        ),
    },
)

OUTPUT_TABLE = TableSchema(
    doc="What is written and where.",
    params={
        "dir": Param(
            str,
            "",
            "output directory (empty: results/<experiment name>; "
            "relative paths are relative to the working directory)",
        ),
        "firm_level": Param(bool, False, "also write firms.parquet (one row per firm and step)"),
    },
)

ENGINE_TABLE = TableSchema(
    doc="How the simulation computes its numbers; results are the same bit for bit either way.",
    params={
        "parallel_kernels": Param(
            bool,
            False,
            "clear posted-price markets of at least 1,000,000 open edges with the parallel "
            "(prange) kernel on numba's threads (NUMBA_NUM_THREADS; default: every core); "
            "results identical bit for bit; 1.0-1.5x faster on 2 idle cores from about a "
            "million edges (benchmarks/README.md); leave it off when other processes, e.g. "
            "a study's workers, already use every core",
        ),
    },
)


@hookimpl
def marketsim_register_goods(register):
    for good in GOODS:
        register(good)


@hookimpl
def marketsim_register_sectors(register):
    for sector in (ChipVendor, NetworkVendor, Utility, Datacenter, Inference, EndDemand, Investor):
        register(sector)


@hookimpl
def marketsim_register_mechanisms(register):
    register(POSTED_PRICE)
    register(CALL_AUCTION)


@hookimpl
def marketsim_register_metrics(register):
    for metric in (
        *BUILTIN_METRICS,
        *TECHNOLOGY_METRICS,
        *CREDIT_METRICS,
        *CAPITAL_MARKET_METRICS,
        *BOTTLENECK_METRICS,
        *ENTRY_METRICS,
    ):
        register(metric)


@hookimpl
def marketsim_register_outside_accounts(register):
    for name, doc in OUTSIDE_ACCOUNT_DOCS.items():
        register(name, doc)


@hookimpl
def marketsim_register_config_tables(register):
    register("experiment", EXPERIMENT_TABLE)
    register("graph", GRAPH_TABLE)
    register("output", OUTPUT_TABLE)
    register("engine", ENGINE_TABLE)
    register("finance", FINANCE_TABLE)
    register("technology", TECHNOLOGY_TABLE)
