"""The household's guards: the checks a command must pass before it triggers its event.

The guards named in the procedures' tables (`workflows/inclusion.py`, `workflows/exit.py`) are functions of
(household, command, policies) in `GUARDS`, looked up by the name the table gives; the `require_*` checks are
the commands' own. Each raises the refusal a cadre reads (a contract code, the rule, one sentence).
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from casecore import commands as c
from casecore.case import Guard
from casecore.errors import InvalidTransition, NotAuthorised, NotFound, PolicyViolation
from casecore.household.state import measure_spans
from casecore.policy import PolicyBook
from casecore.values import (
    Category,
    ExitMode,
    HouseholdType,
    Procedure,
    RiskType,
    SignLevel,
    Stage,
    add_months,
    in_place_for,
    in_place_runs,
    month_window,
    months_covered,
)

if TYPE_CHECKING:
    from casecore.household.aggregate import Household

#: the level of a procedure each signing command signs (四眼原则: one person, one level)
SIGN_LEVEL_OF = {"verify_lead": SignLevel.VERIFY, "verify_exit": SignLevel.VERIFY,
                 "review_township": SignLevel.TOWNSHIP, "approve_county": SignLevel.COUNTY}


# ------------------------------------------------------------------ the commands' own checks


def require_stage(h: Household, cmd: c.HouseholdCommand, stages: tuple[str, ...]) -> None:
    if h.stage not in stages:
        allowed = "、".join(Stage(s).label for s in stages)
        raise InvalidTransition(
            f"户 {h.household_id} 当前{Stage(h.stage).label}, “{c.LABELS[cmd.command]}”只适用于{allowed}的户"
        )


def require_risk_count(risks: list[str], policies: PolicyBook, on: date) -> None:
    """At most the policy's number of risk types a household (the national system's five columns)."""
    most = policies.on(on).procedure.max_risk_types
    if len(risks) > most:
        names = "、".join(RiskType(r).label for r in risks)
        raise PolicyViolation(
            f"风险类型最多{most}项, 此处为{len(risks)}项 ({names}); 请选出最主要的{most}项",
            rule="too_many_risk_types",
        )


def measure_of(h: Household, measure_id: str) -> dict[str, Any]:
    measure = h.measures.get(measure_id)
    if measure is None:
        raise NotFound(f"户 {h.household_id} 没有帮扶措施 {measure_id}; 请先制定措施 (plan_measure)")
    return measure


# ------------------------------------------------------------------ guards of the exit table
# (workflows/exit.py: NOMINATION_GUARDS and the transitions' guards)


def household_has_labour(h: Household, cmd: c.Command, policies: PolicyBook) -> None:
    if not h.has_labour():
        raise PolicyViolation(
            "整户无劳动力, 不能标注风险消除: 落实兜底保障等社会保障措施后继续监测 (持续跟踪)",
            rule="household_without_labour",
        )


def min_assistance_months(h: Household, cmd: c.NominateExit, policies: PolicyBook) -> None:
    if cmd.mode != ExitMode.ASSISTED:
        return
    months = policies.on(cmd.on).exit.min_assistance_months
    measures = h.targeted_measures(cmd.on)
    if not measures:
        raise PolicyViolation(
            f"纳入监测 ({h.included_on}) 以来没有落实的针对性帮扶措施, 不能帮扶消除 (须满{months}个月); "
            f"如风险自然消除请按自然消除 (natural) 提名",
            rule="min_assistance_months",
        )
    # in place (implemented and not ended) for the months, without a gap, before the nomination
    if in_place_for(measure_spans(measures), cmd.on, months):
        return
    runs = in_place_runs(measure_spans(measures), cmd.on)
    if runs and runs[-1][1] == cmd.on:  # still in place: say when the months will be full
        since = runs[-1][0]
        raise PolicyViolation(
            f"针对性帮扶措施自 {since} 起持续落实 (落实且未结束), 不满{months}个月, "
            f"最早于 {add_months(since, months)} 提名帮扶消除",
            rule="min_assistance_months",
        )
    longest = max(((e - s).days, s, e) for s, e in runs) if runs else None
    ran = f"最长一段为 {longest[1]} 至 {longest[2]} ({longest[0]}天)" if longest else "没有"
    raise PolicyViolation(
        f"针对性帮扶措施须持续落实 (落实且未结束) 满{months}个月, {ran}, 且提名时已无在落实的措施; "
        "请落实帮扶措施满规定时间后再提名",
        rule="min_assistance_months",
    )


def exit_income_assessment(h: Household, cmd: c.NominateExit, policies: PolicyBook) -> None:
    start, end = month_window(cmd.on)
    assessment = h.income_as_of(start, end, cmd.on)
    if assessment is None:
        raise PolicyViolation(
            f"缺少覆盖 {start} 至 {end} (提名前12个月) 的收入核算; 请先核算收入再提名",
            rule="exit_income_assessment_missing",
        )
    require_income_at_line(assessment, policies, cmd.on)


def require_income_at_line(assessment: dict[str, Any], policies: PolicyBook, decided_on: date) -> None:
    """The exit's income test, judged by the line in force on the date of the decision (nomination, mark)."""
    if policies.below_line(assessment, decided_on):
        raise PolicyViolation(
            f"{assessment['on']} 核算的人均纯收入 {assessment['per_capita_income']} 元低于"
            f"{decided_on} 适用的监测标准 {policies.monitoring_line(decided_on)} 元, 风险未消除, 继续帮扶",
            rule="exit_income_below_line",
        )


def guarantees_secure(h: Household, cmd: c.Command, policies: PolicyBook) -> None:
    assessment = h.guarantees_as_of(cmd.on)
    if assessment is not None:
        require_guarantees_closed(h, assessment, cmd.on)


def require_guarantees_closed(h: Household, assessment: dict[str, Any], as_of: date) -> None:
    open_ = h.open_guarantees(assessment, as_of)
    if open_:
        raise PolicyViolation(
            f"{assessment['on']} 的三保障及饮水核查仍有未解决问题 ({'; '.join(open_)}); 解决后再办理风险消除",
            rule="open_guarantee",
        )


def post_elimination_assessment(h: Household, cmd: c.Command, policies: PolicyBook) -> None:
    """风险消除后: an income and a guarantee assessment dated after the nomination, and both clear."""
    nominated = h.exit_nominated_on
    assert nominated is not None  # the exit procedure is open
    months = policies.on(cmd.on).income.assessment_months
    # an annual income: the assessment's period spans the policy's months (a month's income proves nothing)
    incomes = [a for a in h.incomes if nominated < a["on"] <= cmd.on
               and months_covered(a["period_start"], a["period_end"], months)]
    guarantees = h.guarantees_as_of(cmd.on, after=nominated)
    missing = ([] if incomes else [f"覆盖{months}个月的收入核算"]) + ([] if guarantees else ["三保障及饮水核查"])
    if missing:
        raise PolicyViolation(
            f"缺少提名 ({nominated}) 之后的{'和'.join(missing)} (风险消除后信息); 请入户采集后再标注风险消除",
            rule="post_elimination_assessment",
        )
    newest = incomes[0]
    for a in incomes:  # the newest by business date; of one day's assessments, the last recorded
        if a["on"] >= newest["on"]:
            newest = a
    require_income_at_line(newest, policies, cmd.on)
    assert guarantees is not None  # `missing` was empty
    require_guarantees_closed(h, guarantees, cmd.on)


# ------------------------------------------------------------------ guards named in the machines' tables


def _started(h: Household) -> date:
    assert h.procedure_started_on is not None  # set when a procedure opens
    return h.procedure_started_on


def publicity_min_days(h: Household, cmd: c.Command, policies: PolicyBook) -> None:
    days = policies.on(cmd.on).procedure.publicity_days
    opened = h.publicity_opened_on
    assert opened is not None  # the machine only allows closing an opened notice
    if (cmd.on - opened).days < days:
        earliest = date.fromordinal(opened.toordinal() + days)
        raise PolicyViolation(
            f"公示自 {opened} 开始, 须满{days}天, 最早于 {earliest} 结束公示", rule="publicity_min_days"
        )


def objections_resolved(h: Household, cmd: c.Command, policies: PolicyBook) -> None:
    open_ = [k for k, o in h.objections.items() if o["outcome"] is None]
    if open_:
        raise PolicyViolation(f"公示期内的异议尚未处理: {', '.join(open_)}; 请先处理异议再结束公示",
                              rule="objections_unresolved")


def four_eyes(h: Household, cmd: c.Command, policies: PolicyBook) -> None:
    """One person signs one level of a procedure (入户核实, 乡级审核, 县级审批): three different people."""
    level = SIGN_LEVEL_OF[cmd.command]
    signed = h.signers.get(cmd.actor.id)
    if signed is None and cmd.actor.id == h.verified_by:
        signed = SignLevel.VERIFY.value
    if signed is not None and signed != level.value:
        raise NotAuthorised(
            f"{cmd.actor.id} 已在本次{Procedure(str(h.procedure)).label}中签署{SignLevel(signed).label}, "
            f"不能再签署{level.label} (四眼原则: 核实、乡级审核、县级审批须由不同人员); 请由另一名干部办理")


def income_assessment_window(h: Household, cmd: c.ApproveCounty, policies: PolicyBook) -> None:
    start, end = month_window(_started(h))
    if h.income_as_of(start, end) is None:
        raise PolicyViolation(
            f"缺少覆盖 {start} 至 {end} (识别前12个月) 的收入核算; 请先核算收入", rule="income_assessment_window"
        )


def category_fits_household(h: Household, cmd: c.ApproveCounty, policies: PolicyBook) -> None:
    need = {Category.MARGINAL: HouseholdType.GENERAL,
            Category.UNSTABLE_ALLEVIATED: HouseholdType.POVERTY_ALLEVIATED}
    category = cmd.category
    wanted = need.get(category) if category is not None else None
    if category is not None and wanted is not None and h.household_type != wanted.value:
        raise PolicyViolation(
            f"{category.label}只适用于{wanted.label}, 本户为{HouseholdType(h.household_type).label}",
            rule="category_household_type",
        )


def income_below_line(h: Household, cmd: c.ApproveCounty, policies: PolicyBook) -> None:
    if cmd.category == Category.SUDDEN_HARDSHIP:
        return
    start, end = month_window(_started(h))
    assessment = h.income_as_of(start, end)
    assert assessment is not None  # income_assessment_window runs first
    if not policies.below_line(assessment, cmd.on):  # the line in force on the approval's date
        raise PolicyViolation(
            f"人均纯收入 {assessment['per_capita_income']} 元不低于 {cmd.on} 适用的"
            f"监测标准 {policies.monitoring_line(cmd.on)} 元, "
            f"不能纳入{Category(str(cmd.category)).label}; 如有大额刚性支出或收入骤减, 请按突发严重困难户认定",
            rule="income_below_line",
        )


#: every guard a household procedure's table names, by that name
GUARDS: dict[str, Guard] = {
    # inclusion
    "publicity_min_days": publicity_min_days,
    "objections_resolved": objections_resolved,
    "four_eyes": four_eyes,
    "income_assessment_window": income_assessment_window,
    "category_fits_household": category_fits_household,
    "income_below_line": income_below_line,
    # exit
    "household_has_labour": household_has_labour,
    "min_assistance_months": min_assistance_months,
    "exit_income_assessment": exit_income_assessment,
    "guarantees_secure": guarantees_secure,
    "post_elimination_assessment": post_elimination_assessment,
}
