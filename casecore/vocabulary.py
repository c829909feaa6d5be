"""The one home of the Chinese labels of domain values, for every human-facing output (CLI, console, reports,
the auditor's replay): event types, payload fields, measure statuses, procedure steps and problem statuses.
Enum values carry their own label beside them (`casecore.values.Labelled`); the steps' labels stand beside
the procedures' tables (`workflows/*.py: LABELS`) and are read here.

Event labels are keyed by `<aggregate>.<event>` (the event's topic without the `cn.casecore.` prefix and the
version), so a new version of an event keeps its label. A test keeps this table complete.
"""

from __future__ import annotations

from typing import Any

from workflows import exit as exit_
from workflows import inclusion, rectification

#: a measure's status (帮扶措施: 计划 → 已落实 → 已结束), as every listing of measures shows it
MEASURE_STATUS: dict[str, str] = {"planned": "计划", "implemented": "已落实", "ended": "已结束"}
#: a lead's status in the case file (线索: 待核实 → 核实符合/不符合 → 已纳入监测, or 已记入监测档案)
LEAD_STATUS: dict[str, str] = {"open": "待核实", "meets": "核实符合", "not_meets": "核实不符合",
                               "included": "已纳入监测", "attached": "已记入监测档案"}
#: the kinds of entry in a problem's rectification ledger (整改台账 记录类型)
LEDGER_ENTRY_LABELS: dict[str, str] = {
    "assigned": "明确双责任",
    "rectification": "整改措施",
    "reported": "整改完成",
    "signed_off": "销号",
    "rejected": "退回整改",
    "accountability": "问责",
    "reopened": "销号后重新整改(双方问责)",
}

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


#: the steps of each procedure by their Chinese names (the tables' own `LABELS`), keyed by procedure
STEP_LABELS: dict[str, dict[str, str]] = {
    "inclusion": {k.value: v for k, v in inclusion.LABELS.items()},
    "exit": {k.value: v for k, v in exit_.LABELS.items()},
}
#: a problem's status (问题整改) by its Chinese name
STATUS_LABELS: dict[str, str] = {k.value: v for k, v in rectification.LABELS.items()}


def step_label(procedure: str, step: str) -> str:
    """The Chinese name of a procedure's step (any procedure but inclusion is read as the exit)."""
    labels = STEP_LABELS["inclusion" if procedure == "inclusion" else "exit"]
    return labels.get(step, step)


def status_label(status: str) -> str:
    """The Chinese name of a problem's status."""
    return STATUS_LABELS.get(status, status)


def value_labels() -> dict[str, dict[str, str]]:
    """Every enumerated domain value's label, by the kind of value (for pages that label values themselves)."""
    from casecore import commands as c
    from casecore import values as v

    def of(enum: Any) -> dict[str, str]:
        return {s.value: s.label for s in enum}

    return {
        "stage": of(v.Stage), "category": of(v.Category), "risk": of(v.RiskType), "role": of(v.Role),
        "rule": of(v.Rule), "kind": of(v.ProblemKind), "measure": of(v.MeasureType), "measure_status": MEASURE_STATUS,
        "labour": of(v.Labour), "household_type": of(v.HouseholdType), "command": dict(c.LABELS),
        "status": dict(STATUS_LABELS), "lead_status": LEAD_STATUS, "procedure": of(v.Procedure),
    }


def event_label(aggregate: str, name: str) -> str:
    """The Chinese label of an event type, or its English name when none is known."""
    return EVENT_LABELS.get(f"{aggregate}.{name}", name)


# --- the fields of stored events, for the auditor's replay ------------------------------------------------

#: Chinese names of event payload fields (the stored names stay English, as the contract has them)
FIELD_LABELS: dict[str, str] = {
    "division_code": "区划", "household_type": "户类型", "relocated": "易地搬迁户", "resettlement_site": "安置点",
    "key_county": "重点帮扶县", "members": "家庭成员", "member": "成员", "person_id": "身份证号", "reason": "原因",
    "net_income": "家庭纯收入", "rigid_expenditure": "合规自付支出", "household_size": "家庭人口",
    "per_capita_income": "人均纯收入", "period_start": "测算期起", "period_end": "测算期止", "housing": "住房",
    "drinking_water_safe": "饮水安全", "children_out_of_school": "失学辍学子女",
    "members_without_medical_insurance": "未参加医保人员", "lead_id": "线索编号", "source": "来源",
    "risk_types": "风险类型", "adds_risks": "新增风险", "detail": "说明", "opens_procedure": "启动识别程序",
    "cycle": "监测轮次", "evidence": "佐证材料", "procedure": "程序", "step": "环节", "stage": "阶段",
    "finding": "核实结论", "objection_id": "异议编号", "outcome": "处理结果", "opened_on": "公示开始日期",
    "decision": "决定", "category": "监测对象类型", "cadre": "帮扶责任人", "measure_id": "措施编号",
    "measure_type": "措施类型", "addresses": "针对风险", "department": "责任部门", "responsible": "责任人",
    "mode": "消除方式", "note": "备注", "origin": "来源系统", "date_precision": "日期精度", "kind": "问题类型",
    "household_id": "户编号", "finding_key": "发现标识", "deadline": "整改时限", "supervisor": "监督方",
    "action": "整改措施", "seq": "序号", "status": "状态", "party": "销号方", "person": "办理人",
    "actions_before": "此前整改措施(条)", "parties": "被问责方", "overdue_days": "超期天数",
    "accountable_party": "问责对象", "closed_on": "销号日期", "name": "姓名", "people": "导出原行(按人)",
}


def _enums() -> dict[str, Any]:
    from casecore import values as v

    return {
        "household_type": v.HouseholdType, "housing": v.Housing, "finding": v.Finding, "outcome": v.ObjectionOutcome,
        "category": v.Category, "measure_type": v.MeasureType, "mode": v.ExitMode, "kind": v.ProblemKind,
        "party": v.Party, "accountable_party": v.AccountableParty, "stage": v.Stage, "procedure": v.Procedure,
        "risk_types": v.RiskType, "adds_risks": v.RiskType, "addresses": v.RiskType,
        "household.source": v.LeadSource, "problem.source": v.ProblemSource,
        "township_reviewed.decision": v.TownshipDecision, "county_decided.decision": v.CountyDecision,
        "member_added.reason": v.MemberChange, "member_removed.reason": v.MemberChange,
    }


def _who(value: dict[str, Any]) -> str:
    from casecore.values import Role

    name = value.get("name") or value.get("id") or ""
    role = str(value.get("role") or "")
    if role in Role._value2member_map_ and Role(role).label not in name:
        name += f" ({Role(role).label})"
    relation = value.get("relation")
    return f"{name}({relation})" if relation else name


def value_text(aggregate: str, event: str, field_name: str, value: Any, payload: dict[str, Any] | None = None) -> str:
    """One payload value as a person reads it: enum values by their Chinese labels, yes/no, people by name."""
    enums = _enums()
    enum = enums.get(f"{event}.{field_name}") or enums.get(f"{aggregate}.{field_name}") or enums.get(field_name)
    if isinstance(value, bool):
        return "是" if value else "否"
    if enum is not None:
        def one(x: Any) -> str:
            return enum(x).label if x in enum._value2member_map_ else str(x)
        return "、".join(one(x) for x in value) if isinstance(value, list | tuple) else one(value)
    if field_name == "step" and payload and payload.get("procedure"):
        return step_label(payload["procedure"], value) if payload["procedure"] in STEP_LABELS else value
    if aggregate == "problem" and field_name == "status":
        return status_label(str(value))
    if field_name == "date_precision":
        return {"day": "日", "month": "月 (导入的历史只精确到月)"}.get(value, str(value))
    if isinstance(value, dict):
        return _who(value)
    if isinstance(value, list | tuple):
        return "、".join(_who(x) if isinstance(x, dict) else str(x) for x in value)
    return str(value)


def payload_items(aggregate: str, event: str, payload: dict[str, Any]) -> list[tuple[str, str]]:
    """An event's payload as (Chinese field name, text) pairs, empty fields left out."""
    return [(FIELD_LABELS.get(k, k), value_text(aggregate, event, k, v, payload))
            for k, v in payload.items() if v not in (None, [], {}, "", ())]
