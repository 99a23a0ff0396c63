"""Lenders: credit priced on leverage and interest cover, and an appetite that follows losses.

Pricing (`credit_spread`). A firm pays the risk-free rate plus a spread (both per year):

    spread = base_spread + (max_spread - base_spread) * min(caution * use, MAX_CREDIT_USE)
    use = leverage / max_debt_to_assets + 1 / (cover * max_debt_to_ebitda * ceiling_rate)

with ``leverage = debt / collateral`` (collateral: cash plus net PP&E as lenders appraise
it, ``book * (V/F) ** collateral_sensitivity`` smoothed over ``appraisal_months``),
``cover = 12 * smoothed EBITDA / annual interest`` and ``ceiling_rate = risk-free +
max_spread``. The spread rises with leverage and falls with cover; a firm without positive
EBITDA has no cover and is priced at the cap. Only debt lent in a month (rolled over or
newly drawn) takes that month's price: the spread a firm pays is the mix over its loans.

Underwriting (`credit_limit`). Lenders refuse new debt that would be priced above
``max_spread``: ``use`` is linear in debt (the cover term at the firm's current rate),
so the most a firm may owe is the debt at which ``caution * use = 1``. In calm times
(``caution = 1``) and without the other term, that is ``max_debt_to_assets`` of collateral or
``max_debt_to_ebitda`` years of EBITDA (at the ceiling rate); together the two terms add, so
a firm thin on both is refused sooner. The limit comes from the pricing rule: no other cap.

Appetite (`Lenders`, the Minsky channel). Lenders remember their losses: the annualised loss
rate (credit losses / exposure, each month) is smoothed over ``loss_memory_months`` and sets

    caution = exp(loss_sensitivity * (smoothed loss rate - normal_loss_rate))

within ``[1 / MAX_CAUTION, MAX_CAUTION]``. A default wave raises caution: spreads widen and
limits shrink; in calm times the remembered loss rate decays towards zero, caution falls
below one and credit loosens (stability breeds instability).

Defaults with recovery. At a default, lenders are exposed to the firm's debt plus the negative
cash they cover; they recover ``recovery_rate`` of the firm's net book value (its assets are
sold to an outside buyer, the ``scrap`` account), at most the exposure. The rest is a credit
loss, shown per sector (cumulative) and for the chain (per step).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from marketsim.metrics import MetricSpec
from marketsim.metrics import by_sector
from marketsim.metrics import ratio
from marketsim.schema import Param
from marketsim.sectors.base import bounded_power
from marketsim.sectors.base import capped_quotient

if TYPE_CHECKING:
    from marketsim.model import SupplyChainModel

MAX_CREDIT_USE = 4.0
"""Largest credit use priced (after caution): the spread of a firm four times over its limits
(or without EBITDA) is ``base + 4 * (max - base)``, a distressed rate (21.5% a year with the
defaults), not infinity."""

MAX_CAUTION = 10.0
"""Largest factor by which lenders' caution scales spreads (and its inverse, limits)."""

CREDIT_PARAMS = {
    "base_spread_per_year": Param(
        float,
        0.015,
        "spread over the risk-free rate of a borrower with no leverage and ample interest cover",
        "per year",
        ge=0,
        le=1,
        source="assumption (investment-grade corporate bond spreads about 1-1.5%)",
    ),
    "max_spread_per_year": Param(
        float,
        0.065,
        "highest spread lenders lend at: new debt that would be priced above it is refused "
        "(a ceiling below base_spread_per_year counts as equal to it)",
        "per year",
        ge=0,
        le=1,
        source="assumption (high-yield spreads about 3-7%; beyond, credit is rationed)",
    ),
    "recovery_rate": Param(
        float,
        0.4,
        "share of a defaulted firm's net book value lenders recover by selling its assets",
        "share",
        ge=0,
        le=1,
        source="assumption (rating agencies' long-run average recovery on defaulted senior "
        "unsecured bonds is about 40%)",
    ),
    "normal_loss_rate_per_year": Param(
        float,
        0.01,
        "loss rate lenders take as normal: above it they grow cautious, below it they relax",
        "per year",
        ge=0,
        le=1,
        source="assumption (US bank loan charge-off rates of about 0.5-1.5% a year)",
    ),
    "loss_sensitivity": Param(
        float,
        25.0,
        "log change of lenders' caution per unit of remembered annual loss rate above normal "
        "(caution x e per 4%/year of losses above normal with the default)",
        "years",
        ge=0,
        le=100,
        source="assumption",
    ),
    "appraisal_months": Param(
        float,
        12.0,
        "months over which lenders' appraisal of collateral follows its market value "
        "(exponential smoothing of (V/F) ** collateral_sensitivity)",
        "months",
        ge=1,
        le=1200,
        source="assumption (annual appraisals and covenant tests)",
    ),
    "loss_memory_months": Param(
        float,
        24.0,
        "months over which lenders remember their loss rate (exponential smoothing)",
        "months",
        ge=1,
        le=1200,
        source="assumption",
    ),
}
"""Keys of the ``[finance]`` table that set the terms of credit (merged into FINANCE_TABLE)."""


def ceiling_rate(params) -> float:
    """Interest rate at the lenders' ceiling: risk-free plus ``max_spread`` (per year)."""
    return params["interest_rate_per_year"] + max(
        params["max_spread_per_year"], params["base_spread_per_year"]
    )


def credit_spread(leverage, interest_cover, caution, max_debt_to_ebitda, params) -> np.ndarray:
    """The spread lenders charge (per year) for a firm's leverage and interest cover.

    Args:
        leverage: debt / collateral value (ratio, >= 0).
        interest_cover: annual EBITDA / annual interest (ratio, >= 0; 0 without EBITDA).
        caution: lenders' caution (ratio, > 0; 1 at the normal loss rate).
        max_debt_to_ebitda: the borrower's sector's years of EBITDA at the ceiling.
        params: the ``[finance]`` table.

    Returns:
        ``base + (max - base) * min(caution * credit_use, MAX_CREDIT_USE)``: rises with
        leverage, falls with cover, rises with caution.
    """
    base = params["base_spread_per_year"]
    room = max(params["max_spread_per_year"] - base, 0.0)
    by_leverage = capped_quotient(leverage, params["max_debt_to_assets"])
    by_cover = capped_quotient(
        1.0, np.asarray(interest_cover) * max_debt_to_ebitda * ceiling_rate(params)
    )
    use = np.minimum(caution * (by_leverage + by_cover), MAX_CREDIT_USE)
    return base + room * use


def credit_limit(collateral, ebitda, rate, caution, max_debt_to_ebitda, params) -> np.ndarray:
    """The most lenders will let a firm owe (USD): the debt priced at ``max_spread``.

    Args:
        collateral: cash plus net PP&E at market value (USD, >= 0).
        ebitda: smoothed monthly EBITDA (USD per month; negative counts as 0).
        rate: the firm's current interest rate (per year), used for its interest cover.
        caution: lenders' caution (ratio).
        max_debt_to_ebitda: the firm's sector's years of EBITDA at the ceiling.
        params: the ``[finance]`` table.

    Returns:
        ``1 / (caution * (1 / (max_debt_to_assets * collateral)
        + rate / (12 * ebitda * max_debt_to_ebitda * ceiling_rate)))``, 0 when either
        capacity is 0 (finite for every valid input).
    """
    per_collateral = capped_quotient(1.0, params["max_debt_to_assets"] * collateral)
    per_earnings = capped_quotient(
        rate, 12.0 * np.maximum(ebitda, 0.0) * max_debt_to_ebitda * ceiling_rate(params)
    )
    limit = capped_quotient(1.0, caution * (per_collateral + per_earnings))
    return np.where(limit > 1e-90, limit, 0.0)


class Lenders:
    """The lenders' book and memory (the outside account ``lenders`` holds their cash).

    Attributes:
        collateral_multiple: per firm, lenders' appraisal of net PP&E as a multiple of book
            value: ``(V/F) ** collateral_sensitivity`` smoothed over ``appraisal_months``.
        loss_rate: remembered (smoothed) annual credit-loss rate (per year).
        caution: factor on spreads and divisor of limits (ratio; 1 at the normal loss rate).
        losses: credit losses this step: exposure - recovery at defaults (USD per step).
        recovered: recovered from defaulted firms' assets this step (USD per step).
    """

    def __init__(self, params, market_multiple: np.ndarray):
        self.collateral_multiple = np.array(market_multiple, dtype=float)
        """Per firm: the multiple of net book value lenders lend against (ratio)."""
        self.loss_rate = float(params["normal_loss_rate_per_year"])
        self.caution = 1.0
        self.losses = 0.0
        self.recovered = 0.0

    def appraise(self, market_multiple: np.ndarray, params) -> None:
        """Move the appraisal multiple of collateral towards ``market_multiple`` (ratio)."""
        weight = 1.0 / params["appraisal_months"]
        self.collateral_multiple = (
            weight * market_multiple + (1.0 - weight) * self.collateral_multiple
        )

    def begin_step(self) -> None:
        """Forget last step's losses and recoveries."""
        self.losses = 0.0
        self.recovered = 0.0

    def remember(self, exposure: float, params) -> None:
        """Fold this step's loss rate on ``exposure`` (USD lent) into memory; reset caution."""
        monthly = float(capped_quotient(self.losses, exposure))
        weight = 1.0 / params["loss_memory_months"]
        self.loss_rate = weight * min(12.0 * monthly, 12.0) + (1.0 - weight) * self.loss_rate
        surprise = params["loss_sensitivity"] * (
            self.loss_rate - params["normal_loss_rate_per_year"]
        )
        bound = float(np.log(MAX_CAUTION))
        self.caution = float(np.exp(np.clip(surprise, -bound, bound)))


def market_multiple(model: SupplyChainModel) -> np.ndarray:
    """Market value of each firm's net PP&E per dollar of book: ``(V/F) ** sensitivity``.

    At most `marketsim.sectors.base.MAX_RESPONSE`.
    """
    sensitivity = model.experiment["finance"]["collateral_sensitivity"]
    return bounded_power(model.valuation_ratio, sensitivity)


def lenders_of(model: SupplyChainModel) -> Lenders:
    """The model's lenders, created on first use (appraising collateral at market)."""
    lenders = getattr(model, "lenders", None)
    if lenders is None:
        lenders = model.lenders = Lenders(model.experiment["finance"], market_multiple(model))
    return lenders


def _debt_weighted_spread(model) -> np.ndarray:
    firms = model.firms
    return ratio(by_sector(model, firms.debt * firms.credit_spread), by_sector(model, firms.debt))


CREDIT_METRICS = [
    MetricSpec(
        "sectors",
        "credit_spread",
        _debt_weighted_spread,
        "per year",
        "debt-weighted spread over the risk-free rate the sector's firms pay; null without debt",
    ),
    MetricSpec(
        "sectors",
        "credit_losses",
        lambda m: by_sector(m, m.firms.credit_losses),
        "USD",
        "cumulative credit losses on the sector's defaulted firms: debt plus negative cash "
        "covered by lenders, less what they recovered",
    ),
    MetricSpec(
        "chain",
        "credit_losses",
        lambda m: lenders_of(m).losses,
        "USD per step",
        "lenders' credit losses at this step's defaults (exposure - recovery)",
    ),
    MetricSpec(
        "chain",
        "credit_recovery",
        lambda m: lenders_of(m).recovered,
        "USD per step",
        "what lenders recovered from this step's defaulted firms' assets",
    ),
    MetricSpec(
        "chain",
        "lender_loss_rate",
        lambda m: lenders_of(m).loss_rate,
        "per year",
        "lenders' remembered (smoothed) annual credit-loss rate",
    ),
    MetricSpec(
        "chain",
        "lender_caution",
        lambda m: lenders_of(m).caution,
        "ratio",
        "lenders' caution: multiplies spreads' risk premium and divides credit limits "
        "(1 at the normal loss rate, below 1 after calm years)",
    ),
]
"""The credit columns of the results tables."""
