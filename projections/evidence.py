"""A finding's evidence as a reader sees it: one Chinese sentence per fact (the dates, figures and policy
lines that make it a finding) instead of the JSON the contract carries."""

from __future__ import annotations

from typing import Any

from casecore.labels import EVENT_LABELS, MEASURE_STATUS
from casecore.problem import status_label
from casecore.values import ExitMode, Labelled, MeasureType, ProblemKind, SignLevel

#: evidence keys → what the fact is, in the words of the ledger and the policy
LABELS: dict[str, str] = {
    "included_on": "纳入监测日期",
    "eliminated_on": "风险消除日期",
    "exit_mode": "消除方式",
    "months": "纳入至消除相隔月数",
    "months_monitored": "已监测月数",
    "min_assistance_months": "政策: 落实帮扶满几个月方可消除",
    "severe_within_months": "政策: 纳入后几个月内消除为严重",
    "helped_not_months": "政策: 纳入后几个月未落实措施即应帮未帮",
    "planned_not_implemented": "已制定未落实措施(项)",
    "measures_implemented": "已落实措施(项)",
    "measures": "本周期帮扶措施",
    "unmet_needs": "未对应措施的风险",
    "fitting_measure_types": "可对应的措施类型",
    "income_assessed_on": "收入核算日期",
    "per_capita_income": "人均纯收入(元)",
    "net_income": "家庭纯收入(元)",
    "household_size": "家庭人口",
    "monitoring_line": "政策: 监测标准(元)",
    "guarantees_assessed_on": "三保障及饮水核查日期",
    "open_guarantees": "未解决的三保障及饮水(项)",
    "housing": "住房",
    "drinking_water_safe": "饮水安全",
    "children_out_of_school": "失学辍学儿童(人)",
    "members_without_medical_insurance": "未参加基本医保(人)",
    "missing": "缺少的核查",
    "department_warnings": "部门预警(次)",
    "first_warning_on": "首次预警日期",
    "last_warning_on": "最近预警日期",
    "repeated_warnings": "政策: 预警几次须核查",
    "first_lead_on": "首次线索日期",
    "nominated_on": "申请/提名日期",
    "days": "相隔天数",
    "identification_days_limit": "政策: 线索至纳入不超过(天)",
    "procedure": "程序",
    "opened_on": "公示开始日期",
    "closed_on": "公示结束日期",
    "publicity_days": "政策: 公示不少于(天)",
    "events": "所涉记录(条)",  # backdated_entry's late entries, future_dated_act's acts dated ahead
    "backdated_entry_days": "政策: 业务发生后几天内录入",
    "worst_event": "相隔最久的记录",
    "worst_on": "其业务日期",
    "worst_recorded_on": "其录入日期",
    "worst_lag_days": "其相隔天数",
    "days_ahead": "业务日期晚于录入(天)",
    "future_dated_days": "政策: 业务日期最多晚于录入(天)",
    "signers": "签署人",
    "longest_days_in_place": "帮扶措施最长持续落实(天)",
    "sudden_hardship_check": "政策: 突发严重困难户人均纯收入核查标准(元)",
    "actor_id": "录入人",
    "dated": "业务日期",
    "days_without_cadre": "未明确帮扶责任人天数",
    "problem_id": "问题编号",
    "kind": "问题类型",
    "deadline": "整改时限",
    "overdue_days": "超期天数",
    "status": "整改状态",
    "responsible": "整改责任方",
    "supervisor": "监督责任方",
    "problem_status": "已登记问题的状态",
    "as_of": "检查基准日",
    "measure_id": "措施编号",
    "measure_type": "措施类型",
}

_PROCEDURE = {"inclusion": "识别纳入", "exit": "风险消除"}


def _labelled(enum: type[Labelled], value: Any) -> str:
    try:
        return enum(value).label
    except ValueError:
        return str(value)


def _plain(key: str, value: Any) -> str:
    """One value in words."""
    if value is None or value == "" or value == []:
        return "无"
    if isinstance(value, bool):
        return "是" if value else "否"
    if key == "measure_type":
        return _labelled(MeasureType, value)
    if key == "kind":
        return _labelled(ProblemKind, value)
    if key in ("status", "problem_status"):
        return MEASURE_STATUS.get(str(value)) or status_label(str(value))
    if key == "procedure":
        return _PROCEDURE.get(str(value), str(value))
    if key == "exit_mode":
        return _labelled(ExitMode, value)
    if key == "worst_event":
        return EVENT_LABELS.get(f"household.{value}", str(value))
    if key == "signers" and isinstance(value, list):
        return "; ".join(_signer(s) for s in value)
    if key == "unmet_needs" and isinstance(value, list):
        return "、".join(_need(v) for v in value)
    if key == "fitting_measure_types" and isinstance(value, dict):
        return "; ".join(f"{_need(n)}可用{'、'.join(_labelled(MeasureType, t) for t in ts)}" for n, ts in value.items())
    if key == "measures" and isinstance(value, list):
        return "; ".join(_measure(m) for m in value) if value else "无"
    if isinstance(value, dict) and {"unit", "person", "name"} & set(value):  # a party: its unit and its person
        return " ".join(str(v) for v in (value.get("unit"), value.get("name") or value.get("person")) if v)
    if isinstance(value, dict):
        return " ".join(str(v) for v in value.values() if v not in (None, ""))
    if isinstance(value, list):
        return "、".join(_plain("", v) for v in value)
    return str(value)


def _signer(s: Any) -> str:
    """One person who signed two levels of a procedure: the procedure, the person, the levels, the days signed."""
    if not isinstance(s, dict):
        return str(s)
    levels = "、".join(_labelled(SignLevel, lv) for lv in s.get("levels", []))
    days = "、".join(str(d) for d in s.get("signed_on", []))
    return f"{_PROCEDURE.get(str(s.get('procedure')), s.get('procedure'))} {s.get('actor_id')} 签署{levels} ({days})"


def _need(need: str) -> str:
    from projections.queries.inspector import _fit_label

    try:
        return _fit_label(need)
    except ValueError:
        return need


def _measure(m: Any) -> str:
    if not isinstance(m, dict):
        return str(m)
    kind = _labelled(MeasureType, m.get("measure_type")) if m.get("measure_type") else m.get("measure_id", "")
    status = MEASURE_STATUS.get(m.get("status", ""), m.get("status", ""))
    when = m.get("implemented_on") or m.get("planned_on") or ""
    return f"{kind}({status}{' ' + when if when else ''})"


def evidence_sentences(evidence: dict[str, Any]) -> list[str]:
    """One sentence per fact of a finding's evidence: “纳入监测日期: 2023-03-02”."""
    return [f"{LABELS.get(key, key)}: {_plain(key, value)}" for key, value in evidence.items()]
