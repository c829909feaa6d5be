"""Who may act: the roles allowed for each command, and a unit's jurisdiction (its division-code prefix)."""

from __future__ import annotations

from casecore.errors import NotAuthorised
from casecore.values import Role

V, T, C, D, I, A, S = (Role.VILLAGE, Role.TOWNSHIP, Role.COUNTY, Role.DEPARTMENT, Role.INSPECTOR, Role.AUDITOR,
                       Role.SYSTEM)

ROLES: dict[str, frozenset[Role]] = {
    "register_household": frozenset({V, T, C, S}),
    "add_member": frozenset({V, T, S}),
    "remove_member": frozenset({V, T, S}),
    "assess_income": frozenset({V, T, C, S}),
    "assess_guarantees": frozenset({V, T, C, D, S}),
    "record_lead": frozenset({V, T, C, D, S}),
    "verify_lead": frozenset({V, T}),
    "sign_application": frozenset({V, T}),
    "open_publicity": frozenset({V, T}),
    "raise_objection": frozenset({V, T}),
    "resolve_objection": frozenset({V, T}),
    "close_publicity": frozenset({V, T}),
    "review_township": frozenset({T}),
    "approve_county": frozenset({C}),
    "enter_system": frozenset({T}),
    "assign_cadre": frozenset({V, T, C}),
    "plan_measure": frozenset({V, T, C, D}),
    "implement_measure": frozenset({V, T, C, D}),
    "end_measure": frozenset({V, T, C, D}),
    "nominate_exit": frozenset({V, T}),
    "verify_exit": frozenset({V, T}),
    "mark_risk_eliminated": frozenset({T}),
    "rollback_elimination": frozenset({T, C}),
    "raise_problem": frozenset({T, C, I, A, S}),
    "assign_responsibility": frozenset({C, I}),
    "record_rectification": frozenset({V, T, C, D}),
    "report_rectified": frozenset({V, T, C, D}),
    "sign_off": frozenset(Role),
    "reject_sign_off": frozenset(Role),
    "hold_accountable": frozenset({C, I, A}),
    "reopen_problem": frozenset({T, C, I, A, S}),
}

_LEVELS = (2, 4, 6, 9, 12)

#: the length of the jurisdiction prefix of each area post (GB/T 2260 and the statistical division codes):
#: a village cadre answers for one village (12 digits), a township for 9, a county for 6
AREA_POSTS: dict[Role, int] = {V: 12, T: 9, C: 6}


def jurisdiction_prefix(unit: str) -> str | None:
    """The division-code prefix a unit answers for, or None for a unit that is not an area (a department).

    `522631101001` (a village) → the whole code; `522631101000` (a township) → `522631101`;
    `522631000000` (a county) → `522631`; shorter codes (`522631`) stand for themselves.
    """
    if not unit.isdigit():
        return None
    if len(unit) < 12:
        return unit
    for n in _LEVELS:
        if set(unit[n:]) <= {"0"}:
            return unit[:n]
    return unit


def unit_fits_role(role: Role, unit: str) -> bool:
    """True when an area post's unit is a division code of its level (a village cadre's unit a village code,
    a township's a township code …); other roles may hold any unit."""
    level = AREA_POSTS.get(role)
    if level is None:
        return True
    prefix = jurisdiction_prefix(unit)
    return prefix is not None and len(prefix) == level


def check_role(command: str, role: Role) -> None:
    allowed = ROLES[command]
    if role not in allowed:
        names = "、".join(sorted(r.label for r in allowed))
        codes = ", ".join(sorted(r.value for r in allowed))
        raise NotAuthorised(f"{Role(role).label}无权执行此操作; 应由{names}办理 ({command} needs role: {codes})")


def check_jurisdiction(unit: str, division_code: str) -> None:
    prefix = jurisdiction_prefix(unit)
    if prefix is not None and not division_code.startswith(prefix):
        raise NotAuthorised(f"单位 {unit} 无权办理区划 {division_code} 的事项; 请由属地单位办理")
