"""Chinese labels of the stored event types, for every human-facing output (replay, audit reports).

Keyed by `<aggregate>.<event>` (the event's topic without the `cn.casecore.` prefix and the version), so a
new version of an event keeps its label. A test keeps this table complete.
"""

from __future__ import annotations

EVENT_LABELS: dict[str, str] = {
    # 户 (household)
    "household.registered": "建档",
    "household.member_added": "人口增加",
    "household.member_removed": "人口减少",
    "household.member_name_corrected": "成员姓名更正",
    "household.source_rows_recorded": "原系统记录留存",
    "household.income_assessed": "收入核算",
    "household.guarantees_assessed": "三保障及饮水核查",
    "household.lead_recorded": "线索登记",
    "household.lead_verified": "入户核实",
    "household.application_signed": "农户申请及承诺授权",
    "household.publicity_opened": "村级评议及公示",
    "household.objection_raised": "公示异议",
    "household.objection_resolved": "异议处理",
    "household.publicity_closed": "公示结束",
    "household.township_reviewed": "乡级审核",
    "household.county_decided": "县级批复/审定及公告",
    "household.entered_system": "乡级录入系统",
    "household.cadre_assigned": "确定帮扶责任人",
    "household.cadre_unknown": "帮扶责任人未知",
    "household.measure_planned": "帮扶措施计划",
    "household.measure_implemented": "帮扶措施落实",
    "household.measure_ended": "帮扶措施结束",
    "household.exit_nominated": "村级提名风险消除",
    "household.exit_verified": "风险消除入户核实",
    "household.risk_eliminated": "标注风险消除",
    "household.elimination_rolled_back": "风险消除回退",
    # 问题 (problem)
    "problem.raised": "问题登记",
    "problem.responsibility_assigned": "明确双责任",
    "problem.rectification_recorded": "整改措施",
    "problem.rectification_reported": "整改完成",
    "problem.signed_off": "销号",
    "problem.sign_off_rejected": "销号退回",
    "problem.held_accountable": "问责",
    "problem.reopened": "问题重新打开",
}


def event_label(aggregate: str, name: str) -> str:
    """The Chinese label of an event type, or its English name when none is known."""
    return EVENT_LABELS.get(f"{aggregate}.{name}", name)
