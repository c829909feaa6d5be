"""Cases as readers see them: a household's or a problem's state as CONTRACT.md names it, for `--json`
output, the HTTP service, the auditor's replay and tests. Presentation only: nothing here decides.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from casecore.household import Household
    from casecore.problem import Problem


def household_state(h: Household) -> dict[str, Any]:
    """The household's current state as CONTRACT.md "Household state" names it (plus more detail)."""
    return {
        "household_id": h.household_id,
        "division_code": h.division_code,
        "household_type": h.household_type,
        "relocated": h.relocated,
        "resettlement_site": h.resettlement_site,
        "key_county": h.key_county,
        "stage": h.stage,
        "category": h.category,
        "risk_types": list(h.risk_types),
        "members": [dict(m) for m in h.members.values()],
        "household_size": len(h.current_members()),
        "has_labour": h.has_labour(),
        "open_procedure": h.procedure,
        "procedure_step": h.step,
        "procedure_started_on": h.procedure_started_on,
        "cycle": h.cycle,
        "included_on": h.included_on,
        "eliminated_on": h.eliminated_on,
        "exit_mode": h.exit_mode,
        "exit_nominated_on": h.exit_nominated_on,
        "rolled_back_on": h.rolled_back_on,
        "cadre": h.cadre,
        "income_assessments": [dict(a) for a in h.incomes],
        "guarantee_assessments": [dict(g) for g in h.guarantees],
        "leads": [dict(v) for v in h.leads.values()],
        "objections": [dict(v, objection_id=k) for k, v in h.objections.items()],
        "measures": [dict(v) for v in h.measures.values()],
        "version": h.version,
    }


def problem_state(p: Problem) -> dict[str, Any]:
    """The problem's current state, for `--json` output and tests."""
    return {
        "problem_id": p.problem_id,
        "kind": p.kind,
        "household_id": p.household_id,
        "division_code": p.division_code,
        "source": p.source,
        "detail": p.detail,
        "finding_key": p.finding_key,
        "raised_on": p.raised_on,
        "raised_by": p.raised_by,
        "status": p.status,
        "responsible": p.responsible,
        "supervisor": p.supervisor,
        "deadline": p.deadline,
        "actions": [dict(a) for a in p.actions],
        "signatures": {k: dict(v) for k, v in p.signatures.items()},
        "closed_on": p.closed_on,
        "rejections": [dict(r) for r in p.rejections],
        "accountability": [dict(a) for a in p.accountability],
        "reopenings": [dict(r) for r in p.reopenings],
        "version": p.version,
    }
