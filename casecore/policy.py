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

from pydantic import BaseModel, ConfigDict

POLICY_DIR = Path(__file__).with_name("policies")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class IncomePolicy(_Frozen):
    monitoring_line: Decimal
    assessment_months: int


class ProcedurePolicy(_Frozen):
    publicity_days: int
    identification_days_limit: int
    backdated_entry_days: int
    helped_not_months: int


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
