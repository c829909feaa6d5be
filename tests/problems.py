"""Builders for rectification tests: the people of a double responsibility and each step of a problem's life."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from casecore.commands import Command
from tests.builders import COUNTY_UNIT, TOWNSHIP_UNIT, VILLAGE_CODE, cmd

INSPECTOR = {"id": "insp-1", "name": "督查组甲", "role": "inspector", "unit": COUNTY_UNIT}
#: the responsible party's named person (a township cadre) and the supervisor's (a county cadre)
RESPONSIBLE = {"id": "t-resp-1", "name": "乡镇责任人", "role": "township", "unit": TOWNSHIP_UNIT}
SUPERVISOR = {"id": "c-sup-1", "name": "县级监督人", "role": "county", "unit": COUNTY_UNIT}
#: another person of the supervising unit, not the one named
OTHER_COUNTY = {"id": "c-other-2", "name": "县级干部乙", "role": "county", "unit": COUNTY_UNIT}
WORKER = {"id": "t-work-3", "name": "乡镇干部丙", "role": "township", "unit": TOWNSHIP_UNIT}
COUNTY_LEAD = {"id": "c-lead-9", "name": "县乡村振兴局", "role": "county", "unit": COUNTY_UNIT}

PARTIES = {
    "responsible": {"unit": TOWNSHIP_UNIT, "person": RESPONSIBLE["id"], "name": RESPONSIBLE["name"]},
    "supervisor": {"unit": COUNTY_UNIT, "person": SUPERVISOR["id"], "name": SUPERVISOR["name"]},
}


def raise_(pid: str = "P1", on: date = date(2022, 4, 10), household_id: str | None = "H1",
           division_code: str = VILLAGE_CODE, kind: str = "helped_not", source: str = "supervision",
           actor: dict | None = None, **fields: Any) -> Command:
    return cmd("raise_problem", on, actor or INSPECTOR, problem_id=pid, kind=kind, household_id=household_id,
               division_code=division_code, source=source, detail="监测户未落实帮扶措施", **fields)


def assign(pid: str = "P1", on: date = date(2022, 4, 11), deadline: date = date(2022, 5, 31),
           responsible: dict | None = None, supervisor: dict | None = None) -> Command:
    return cmd("assign_responsibility", on, COUNTY_LEAD, problem_id=pid,
               responsible=responsible or PARTIES["responsible"], supervisor=supervisor or PARTIES["supervisor"],
               deadline=deadline.isoformat())


def rectify(pid: str = "P1", on: date = date(2022, 4, 20), action: str = "落实产业帮扶措施",
            actor: dict | None = None, evidence: list[str] | None = None) -> Command:
    return cmd("record_rectification", on, actor or WORKER, problem_id=pid, action=action,
               evidence=evidence or [f"{pid}-整改照片.jpg"])


def report(pid: str = "P1", on: date = date(2022, 4, 25), actor: dict | None = None) -> Command:
    return cmd("report_rectified", on, actor or WORKER, problem_id=pid)


def sign(pid: str = "P1", party: str = "responsible", on: date = date(2022, 4, 26),
         actor: dict | None = None) -> Command:
    actor = actor or (RESPONSIBLE if party == "responsible" else SUPERVISOR)
    return cmd("sign_off", on, actor, problem_id=pid, party=party)


def reject(pid: str = "P1", party: str = "supervisor", on: date = date(2022, 4, 27), reason: str = "整改不到位",
           actor: dict | None = None) -> Command:
    actor = actor or (RESPONSIBLE if party == "responsible" else SUPERVISOR)
    return cmd("reject_sign_off", on, actor, problem_id=pid, party=party, reason=reason)


def accountable(pid: str = "P1", party: str = "both", on: date = date(2022, 6, 15), reason: str = "整改超期",
                actor: dict | None = None) -> Command:
    return cmd("hold_accountable", on, actor or COUNTY_LEAD, problem_id=pid, party=party, reason=reason)


def reopen(pid: str = "P1", on: date = date(2022, 7, 10), deadline: date = date(2022, 8, 10),
           reason: str = "复查发现问题仍然存在", actor: dict | None = None, **fields: Any) -> Command:
    return cmd("reopen_problem", on, actor or INSPECTOR, problem_id=pid, reason=reason,
               deadline=deadline.isoformat(), **fields)


def closed_path(pid: str = "P1", start: date = date(2022, 4, 10), household_id: str | None = "H1",
                **raise_fields: Any) -> list[Command]:
    """Raised, assigned (deadline 50 days on), rectified, reported and signed off by both: closed."""
    d = start
    return [
        raise_(pid, d, household_id=household_id, **raise_fields),
        assign(pid, d + timedelta(days=1), deadline=d + timedelta(days=50)),
        rectify(pid, d + timedelta(days=10)),
        report(pid, d + timedelta(days=15)),
        sign(pid, "responsible", d + timedelta(days=16)),
        sign(pid, "supervisor", d + timedelta(days=18)),
    ]
