"""Command builders for tests: valid commands with sensible defaults, so a test states only what matters."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from benchmarks.commands import (  # noqa: F401 - the builders tests import from here
    COUNTY,
    COUNTY_UNIT,
    TOWNSHIP,
    TOWNSHIP_UNIT,
    VILLAGE,
    VILLAGE_2,
    VILLAGE_CODE,
    cmd,
    inclusion_path,
    person,
    register,
)
from casecore.commands import Command
from casecore.values import month_window


def run(app, commands: list[Command]) -> list:
    """Apply commands one by one; fail loudly on the first refusal (for set-up steps)."""
    outcomes = []
    for c in commands:
        o = app.handle(c)
        assert o.ok, (c.command, o.error and o.error.as_dict())
        outcomes.append(o)
    return outcomes


# --- assistance and exit --------------------------------------------------------------------------


def measure(hid: str, mid: str, planned_on: date, implemented_on: date | None = None, measure_type: str = "health",
            addresses: tuple[str, ...] = ("illness",)) -> list[Command]:
    """Plan a measure (and implement it, when `implemented_on` is given)."""
    out = [cmd("plan_measure", planned_on, household_id=hid, measure_id=mid, measure_type=measure_type,
               addresses=list(addresses), department="县医保局", responsible="张医生")]
    if implemented_on is not None:
        out.append(cmd("implement_measure", implemented_on, household_id=hid, measure_id=mid))
    return out


def income(hid: str, on: date, per_capita_income: int | str, size: int = 2, procedure_on: date | None = None,
           period: tuple[date, date] | None = None) -> Command:
    """An income assessment made on `on` covering the 12 months before `procedure_on` (default: `on`)."""
    start, end = period or month_window(procedure_on or on)
    return cmd("assess_income", on, household_id=hid, period_start=start.isoformat(), period_end=end.isoformat(),
               net_income=str(Decimal(str(per_capita_income)) * size), rigid_expenditure="0")


def guarantees(hid: str, on: date, housing: str = "safe", drinking_water_safe: bool = True,
               children_out_of_school: list[str] | None = None,
               members_without_medical_insurance: list[str] | None = None) -> Command:
    return cmd("assess_guarantees", on, household_id=hid, housing=housing, drinking_water_safe=drinking_water_safe,
               children_out_of_school=children_out_of_school or [],
               members_without_medical_insurance=members_without_medical_insurance or [])


def exit_nomination(hid: str, on: date, mode: str = "assisted", per_capita_income: int = 8000,
                    size: int = 2) -> list[Command]:
    """The data a nomination needs (income over the 12 months before, guarantees secure) and the nomination."""
    return [income(hid, on, per_capita_income, size), guarantees(hid, on),
            cmd("nominate_exit", on, household_id=hid, mode=mode)]


def exit_procedure(hid: str, nominated_on: date, per_capita_income: int = 8000, size: int = 2,
                   verifier: dict | None = None) -> list[Command]:
    """Every step after a nomination on `nominated_on`, through the county's decision, the fresh
    (风险消除后) assessments and the township's mark."""
    d = nominated_on
    return [
        cmd("verify_exit", d + timedelta(days=1), verifier or VILLAGE_2, household_id=hid, finding="meets"),
        cmd("open_publicity", d + timedelta(days=2), household_id=hid),
        cmd("close_publicity", d + timedelta(days=7), household_id=hid),
        cmd("review_township", d + timedelta(days=8), household_id=hid, decision="pass"),
        cmd("approve_county", d + timedelta(days=9), household_id=hid, decision="approve"),
        income(hid, d + timedelta(days=10), per_capita_income, size, procedure_on=d),
        guarantees(hid, d + timedelta(days=10)),
        cmd("mark_risk_eliminated", d + timedelta(days=11), household_id=hid),
    ]


def exit_path(hid: str, nominated_on: date, mode: str = "assisted", per_capita_income: int = 8000,
              size: int = 2) -> list[Command]:
    """A clean exit from nomination to the township's mark."""
    return [*exit_nomination(hid, nominated_on, mode, per_capita_income, size),
            *exit_procedure(hid, nominated_on, per_capita_income, size)]
