"""Policy as versioned data: each file in `casecore/policies/` has an effective date; the policy in force
on an act's business date applies. No policy figure is written in code."""

from __future__ import annotations

import os
import tomllib
from bisect import bisect_right
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

POLICY_DIR = Path(__file__).with_name("policies")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class IncomePolicy(_Frozen):
    monitoring_line: Decimal
    assessment_months: int
    sudden_hardship_check: Decimal


class ProcedurePolicy(_Frozen):
    publicity_days: int
    identification_days_limit: int
    backdated_entry_days: int
    helped_not_months: int
    future_dated_days: int
    max_risk_types: int


class ExitPolicy(_Frozen):
    min_assistance_months: int
    fast_exit_severe_months: int


class HospitalScreening(_Frozen):
    since: date
    poverty_alleviated_single_stay: Decimal
    poverty_alleviated_yearly_total: Decimal
    general_single_stay: Decimal
    general_yearly_total: Decimal


class ScreeningPolicy(_Frozen):
    hospital: HospitalScreening
    dibao_since: date
    warnings_since: date
    repeated_warnings: int


class Campaign(_Frozen):
    plans_by: date
    screening_from: date
    screening_to: date
    rectified_by: date
    inspection_by: date
    summary_by: date
    report_by: date


class Policy(_Frozen):
    """One version of the policy, in force from `effective_from`."""

    id: str
    region: str
    name: str
    province_code: str
    effective_from: date
    income: IncomePolicy
    procedure: ProcedurePolicy
    exit: ExitPolicy
    screening: ScreeningPolicy
    campaign: Campaign
    fit: dict[str, tuple[str, ...]]

    def fitting_measures(self, need: str) -> frozenset[str]:
        """Measure types that fit a risk type or guarantee need (缺什么补什么)."""
        return frozenset(self.fit.get(need, ()))


def per_capita(net_income: Decimal, rigid_expenditure: Decimal, size: int) -> Decimal:
    """Per-capita net income, exact (not rounded): what is compared with the line. Shown rounded to the fen."""
    return (net_income - rigid_expenditure) / size


HALF_FEN = Decimal("0.005")


def assessed_per_capita(assessment: Any) -> Decimal:
    """The exact per-capita income of a stored assessment (a mapping or a row with `net_income`,
    `rigid_expenditure`, `household_size`, `per_capita_income`). The stored per-capita figure is rounded to
    the fen; when it is the rounding of (net − rigid) ÷ size, that exact quotient is the income compared.
    When it is not (an import states the national system's per-capita figure beside incomplete parts), the
    stated figure is the income."""
    get = assessment.get if isinstance(assessment, dict) else lambda k: getattr(assessment, k, None)
    net, size, stated = get("net_income"), get("household_size"), get("per_capita_income")
    if net is None or not size:
        return Decimal(str(stated))
    exact = per_capita(Decimal(net), Decimal(get("rigid_expenditure") or 0), int(size))
    if stated is None or abs(exact - Decimal(stated)) <= HALF_FEN:
        return exact
    return Decimal(stated)


class PolicyBook:
    """All versions of a region's policy, looked up by business date."""

    def __init__(self, policies: list[Policy]):
        if not policies:
            raise ValueError("no policy files found")
        self.policies = sorted(policies, key=lambda p: p.effective_from)
        self._starts = [p.effective_from for p in self.policies]

    def on(self, day: date) -> Policy:
        """The policy in force on `day` (the earliest version for days before all of them)."""
        i = bisect_right(self._starts, day) - 1
        return self.policies[max(i, 0)]

    def monitoring_line(self, decided_on: date) -> Decimal:
        """THE line rule (DOMAIN.md "Which year's line"): a decision is judged by the line in force on the
        date of that decision — the county approval of an inclusion, the nomination and the mark of an exit,
        the assessment's date for 应纳未纳, the screening's date for a department warning. The inspector's
        SQL compiles the same lookup (`projections.queries.inspector.Inspector.line_on`)."""
        return self.on(decided_on).income.monitoring_line

    def below_line(self, assessment: Any, decided_on: date) -> bool:
        """Is the assessment's exact per-capita income below the line of a decision on `decided_on`?"""
        return assessed_per_capita(assessment) < self.monitoring_line(decided_on)

    @classmethod
    def load(cls, directory: Path = POLICY_DIR, region: str | None = None) -> PolicyBook:
        region = region or os.environ.get("CASECORE_POLICY_REGION", "guizhou")
        found = []
        for path in sorted(directory.glob("*.toml")):
            with path.open("rb") as fh:
                policy = Policy.model_validate(tomllib.load(fh))
            if policy.region == region:
                found.append(policy)
        return cls(found)


@cache
def default_policies() -> PolicyBook:
    return PolicyBook.load()
