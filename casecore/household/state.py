"""What a household's state says, asked when deciding and by every reader: who lives there, whether any
of them can work, which assessments and measures count on a date.

The rules here are the domain's: projections that keep the same facts in tables call these functions
instead of writing the rules again.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import TYPE_CHECKING, Any

from casecore.values import Housing, Labour, Stage

#: stages in which no procedure is open: a step that leads to one of them closes the procedure
SETTLED_STAGES = (Stage.NOT_MONITORED.value, Stage.MONITORED.value, Stage.RISK_ELIMINATED.value)
#: labour capacities that count as labour (整户无劳动力 when no current member has one)
WITH_LABOUR = (Labour.FULL.value, Labour.WEAK.value)
#: stages of a household under assistance: measures are planned and implemented only then
ASSISTED_STAGES = (Stage.MONITORED.value, Stage.IN_EXIT.value)


def is_settled(stage: str) -> bool:
    """Whether a case in `stage` has no open procedure."""
    return stage in SETTLED_STAGES


def has_labour(members: Iterable[dict[str, Any]]) -> bool:
    """False for 整户无劳动力: none of `members` (the current ones) has full or weak labour capacity."""
    return any(m["labour"] in WITH_LABOUR for m in members)


def measure_spans(measures: list[dict[str, Any]]) -> list[tuple[date, date | None]]:
    """When each implemented measure was in place: from its implementation to its end (if it ended)."""
    return [(m["implemented_on"], m["ended_on"]) for m in measures if m["implemented_on"] is not None]


class HouseholdState:
    """The household's attributes (assigned by the mutators) and the queries over them."""

    if TYPE_CHECKING:  # assigned by the mutators; declared here for type checkers only (no dataclass magic)
        household_id: str
        division_code: str
        household_type: str
        relocated: bool
        resettlement_site: str | None
        key_county: bool
        registered_on: date
        members: dict[str, dict[str, Any]]
        stage: str
        stage_before_procedure: str
        procedure: str | None
        step: str | None
        step_on: date | None
        cycle: int
        procedure_started_on: date | None
        category: str | None
        risk_types: list[str]
        incomes: list[dict[str, Any]]
        guarantees: list[dict[str, Any]]
        leads: dict[str, dict[str, Any]]
        objections: dict[str, dict[str, Any]]
        publicity_opened_on: date | None
        verified_by: str | None
        signers: dict[str, str]
        included_on: date | None
        eliminated_on: date | None
        exit_mode: str | None
        exit_nominated_on: date | None
        rolled_back_on: date | None
        cadre: dict[str, Any] | None
        measures: dict[str, dict[str, Any]]
        #: idempotency keys of the commands decided → the digest of each one's content (None: not kept)
        command_ids: dict[str, str | None]
        source_rows: dict[str, dict[str, str]]
        version: int

    def size_on(self, day: date) -> int:
        """Household size on a date: members present then (registration members count from the start)."""
        n = 0
        for m in self.members.values():
            added, removed = m.get("added_on"), m.get("removed_on")
            if (added is None or added <= day) and (removed is None or removed > day):
                n += 1
        return n

    def current_members(self) -> list[dict[str, Any]]:
        return [m for m in self.members.values() if m.get("removed_on") is None]

    def has_labour(self) -> bool:
        """False for 整户无劳动力: no current member has full or weak labour capacity."""
        return has_labour(self.current_members())

    def targeted_measures(self, as_of: date) -> list[dict[str, Any]]:
        """Measures counting as targeted assistance on `as_of`: implemented in the current monitoring cycle
        (on or after `included_on`) and not after `as_of`. Ended measures still count: they were carried out."""
        if self.included_on is None:
            return []
        return [m for m in self.measures.values()
                if m["implemented_on"] is not None and self.included_on <= m["implemented_on"] <= as_of]

    def income_as_of(self, start: date, end: date, as_of: date | None = None) -> dict[str, Any] | None:
        """The newest income assessment whose period covers [start, end], made on or before `as_of` (any date,
        if not given)."""
        best = None
        for a in self.incomes:
            if (as_of is None or a["on"] <= as_of) and a["period_start"] <= start and a["period_end"] >= end and (
                    best is None or a["on"] >= best["on"]):
                best = a
        return best

    def guarantees_as_of(self, as_of: date, after: date | None = None) -> dict[str, Any] | None:
        """The newest guarantee assessment made on or before `as_of` (and strictly after `after`, if given)."""
        best = None
        for g in self.guarantees:
            if g["on"] <= as_of and (after is None or g["on"] > after) and (best is None or g["on"] >= best["on"]):
                best = g
        return best

    def open_guarantees(self, assessment: dict[str, Any], as_of: date) -> list[str]:
        """What an assessment leaves open (三保障及饮水), counting only people who are still members on `as_of`."""
        present = {pid for pid, m in self.members.items()
                   if (m.get("added_on") is None or m["added_on"] <= as_of)
                   and (m.get("removed_on") is None or m["removed_on"] > as_of)}
        out = []
        if assessment["housing"] != Housing.SAFE.value:
            out.append(f"住房为{Housing(assessment['housing']).label}")
        if not assessment["drinking_water_safe"]:
            out.append("饮水不安全")
        dropouts = [p for p in assessment["children_out_of_school"] if p in present]
        if dropouts:
            out.append(f"义务教育阶段失学辍学 {', '.join(dropouts)}")
        uninsured = [p for p in assessment["members_without_medical_insurance"] if p in present]
        if uninsured:
            out.append(f"未参加基本医疗保险 {', '.join(uninsured)}")
        return out
