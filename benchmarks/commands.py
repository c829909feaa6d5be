"""Valid commands with sensible defaults, for benchmarks and tests alike: a household of two and every step of
a clean inclusion, so a workload states only what it varies."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from casecore.commands import Command, parse_command
from casecore.values import make_person_id

VILLAGE_CODE = "522631101001"   # 黔东南州 黎平县 (522631), a township and village below it
TOWNSHIP_UNIT = "522631101000"
COUNTY_UNIT = "522631000000"

VILLAGE = {"id": "v-cadre-1", "name": "村干部甲", "role": "village", "unit": VILLAGE_CODE}
VILLAGE_2 = {"id": "v-cadre-2", "name": "村干部乙", "role": "village", "unit": VILLAGE_CODE}
TOWNSHIP = {"id": "t-cadre-1", "name": "乡镇干部", "role": "township", "unit": TOWNSHIP_UNIT}
COUNTY = {"id": "c-cadre-1", "name": "县乡村振兴局", "role": "county", "unit": COUNTY_UNIT}


def person(n: int, born: date = date(1980, 1, 2), labour: str = "full", relation: str = "户主", **flags: Any) -> dict:
    return {"person_id": make_person_id("522631", born, n), "name": f"成员{n}", "relation": relation,
            "birth_date": born.isoformat(), "labour": labour, **flags}


def cmd(name: str, on: date | str, actor: dict | None = None, **fields: Any) -> Command:
    actor = actor or (TOWNSHIP if name in ("review_township", "enter_system", "mark_risk_eliminated",
                                           "rollback_elimination") else
                      COUNTY if name == "approve_county" else VILLAGE)
    data = {"command": name, "on": on if isinstance(on, str) else on.isoformat(), "actor": actor, **fields}
    return parse_command(data)


def register(hid: str = "H1", on: date = date(2023, 3, 1), household_type: str = "general",
             members: list[dict] | None = None, **fields: Any) -> Command:
    return cmd("register_household", on, household_id=hid, division_code=VILLAGE_CODE,
               household_type=household_type, members=members or [person(1), person(2, date(1982, 5, 6),
                                                                               relation="配偶")], **fields)


def inclusion_path(hid: str = "H1", start: date = date(2023, 3, 2), per_capita_income: int = 5000,
                   category: str = "marginal", risk_types: tuple[str, ...] = ("illness",),
                   size: int = 2) -> list[Command]:
    """Every step of a clean inclusion from lead to entry, starting on `start` (the procedure date)."""
    ws = date(start.year - 1, start.month, 1)
    we = start.replace(day=1) - timedelta(days=1)
    d = start
    steps = [
        cmd("record_lead", d, household_id=hid, lead_id=f"{hid}-L1", source="cadre_screening",
            risk_types=list(risk_types), detail="排查发现"),
        cmd("assess_income", d + timedelta(days=1), household_id=hid, period_start=ws.isoformat(),
            period_end=we.isoformat(), net_income=str(per_capita_income * size), rigid_expenditure="0"),
        cmd("verify_lead", d + timedelta(days=1), household_id=hid, lead_id=f"{hid}-L1", finding="meets"),
        cmd("sign_application", d + timedelta(days=2), household_id=hid),
        cmd("open_publicity", d + timedelta(days=3), household_id=hid),
        cmd("close_publicity", d + timedelta(days=8), household_id=hid),
        cmd("review_township", d + timedelta(days=9), household_id=hid, decision="pass"),
        cmd("approve_county", d + timedelta(days=10), household_id=hid, decision="approve", category=category,
            risk_types=list(risk_types)),
        cmd("enter_system", d + timedelta(days=11), household_id=hid),
    ]
    return steps
