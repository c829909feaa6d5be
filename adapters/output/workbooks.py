"""The printable workbooks of the reports people sign: the inspector's findings (问题清单 and its two summaries),
the double ledger (问题台账, 整改台账) and the roster (监测对象名单). Every sheet is laid out and written by
`adapters.output.sheets`; what is here is which columns, which rows and which titles.
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

from adapters.output.sheets import Column, new_workbook, sheet, subtitle, title, write_table
from adapters.readside.places import Places
from casecore.labels import MEASURE_STATUS
from casecore.problem import status_label
from casecore.values import (
    AccountableParty,
    Category,
    ExitMode,
    HouseholdType,
    Housing,
    Labelled,
    MeasureType,
    ProblemKind,
    ProblemSource,
    RiskType,
    Role,
    Stage,
)

# ---------------------------------------------------------------------- the inspector's findings

FINDING_COLUMNS = [
    Column("no", "序号"),
    Column("township", "乡镇", wrap=8),
    Column("village", "村", wrap=8),
    Column("household_id", "户编号"),
    Column("rule_label", "问题(规则)", wrap=14),
    Column("severity_label", "严重程度"),
    Column("detail", "情况说明", wrap=34),
    Column("evidence_text", "证据", wrap=34),
    Column("policy", "政策依据", wrap=22),
    Column("problem_id", "问题编号"),
]

RULE_SUMMARY_COLUMNS = [
    Column("no", "序号"),
    Column("rule_label", "问题(规则)", wrap=20),
    Column("policy", "政策依据", wrap=50),
    Column("severe", "严重"),
    Column("warning", "一般"),
    Column("total", "合计"),
]

TOWNSHIP_SUMMARY_COLUMNS = [
    Column("no", "序号"),
    Column("township", "乡镇", wrap=8),
    Column("households", "涉及户数"),
    Column("severe", "严重"),
    Column("warning", "一般"),
    Column("total", "合计"),
    Column("top", "主要问题", wrap=40),
]


def finding_rows(findings: list[Any], places: Places) -> list[dict[str, Any]]:
    """The findings as the list shows them: by township and village, severe first, in rule order."""
    from projections.evidence import evidence_sentences
    from projections.queries.inspector import RULES, SEVERE, SEVERITY_LABELS

    order = {r: i for i, r in enumerate(RULES)}
    ranked = sorted(findings, key=lambda f: (f.division_code[:9], f.division_code, f.severity != SEVERE,
                                             order.get(f.rule, 0), f.household_id or ""))
    return [{"no": i, "township": places.township(f.division_code), "village": places.village(f.division_code),
             "household_id": f.household_id or "", "rule_label": RULES[f.rule].label,
             "severity_label": SEVERITY_LABELS[f.severity], "detail": f.detail,
             "evidence_text": "\n".join(evidence_sentences(f.evidence)), "policy": RULES[f.rule].policy,
             "problem_id": f.problem_id or "", "division_code": f.division_code}
            for i, f in enumerate(ranked, start=1)]


def write_findings(path: Path, findings: list[Any], day: date, division: str | None = None,
                   places: Places | None = None, cadre_unknown: int = 0) -> None:
    """The findings as a printable workbook: 问题清单 (by township and village, evidence in sentences),
    按规则汇总 and 按乡镇汇总; households whose cadre is unknown (an export without the column) are counted
    under the rule summary, not judged."""
    from projections.queries.inspector import RULES, SEVERE

    places = places or Places()
    area = places.area(division, (f.division_code for f in findings))
    severe = sum(1 for f in findings if f.severity == SEVERE)
    counts = f"共 {len(findings)} 条, 其中严重 {severe} 条"
    wb = new_workbook()
    write_table(sheet(wb, "问题清单"), title(area, "督查发现问题清单", day), subtitle(day, counts),
                FINDING_COLUMNS, finding_rows(findings, places), form=True)
    by_rule: dict[str, Counter[str]] = {r: Counter() for r in RULES}
    for f in findings:
        by_rule[f.rule][f.severity] += 1
    rule_rows = [{"no": i, "rule_label": info.label, "policy": info.policy, "severe": by_rule[r]["severe"],
                  "warning": by_rule[r]["warning"], "total": sum(by_rule[r].values())}
                 for i, (r, info) in enumerate(RULES.items(), start=1)]
    total = {"rule_label": "合计", "severe": severe, "warning": len(findings) - severe, "total": len(findings)}
    unknown = f", 帮扶责任人未知(未判定) {cadre_unknown} 户" if cadre_unknown else ""
    write_table(sheet(wb, "按规则汇总"), title(area, "督查发现问题汇总（按规则）", day),
                subtitle(day, counts + unknown),
                RULE_SUMMARY_COLUMNS, rule_rows, form=True, totals=total)
    towns: dict[str, list[Any]] = {}
    for f in findings:
        towns.setdefault(f.division_code[:9], []).append(f)
    town_rows = []
    for i, (code, fs) in enumerate(sorted(towns.items()), start=1):
        top = Counter(RULES[f.rule].label for f in fs).most_common(3)
        n_severe = sum(1 for f in fs if f.severity == SEVERE)
        town_rows.append({"no": i, "township": places.township(code) or places.name(code),
                          "households": len({f.household_id for f in fs if f.household_id}),
                          "severe": n_severe, "warning": len(fs) - n_severe, "total": len(fs),
                          "top": "、".join(f"{label} {n} 条" for label, n in top)})
    town_total = {"township": "合计", "households": len({f.household_id for f in findings if f.household_id}),
                  "severe": severe, "warning": len(findings) - severe, "total": len(findings)}
    write_table(sheet(wb, "按乡镇汇总"), title(area, "督查发现问题汇总（按乡镇）", day), subtitle(day, counts),
                TOWNSHIP_SUMMARY_COLUMNS, town_rows, form=True, totals=town_total)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)



# ---------------------------------------------------------------------- the double ledger

#: 问题台账 as a county office signs it off (the order of the national and provincial forms); what does not fit
#: the printed page is in the detail sheet, keyed by 问题编号
PROBLEM_COLUMNS = [
    Column("no", "序号"),
    Column("problem_id", "问题编号"),
    Column("township", "乡镇", wrap=8),
    Column("village", "村", wrap=8),
    Column("household_id", "户编号"),
    Column("source_label", "问题来源", wrap=8),
    Column("kind_label", "问题类型", wrap=12),
    Column("detail", "问题描述", wrap=30),
    Column("found_on", "发现日期"),
    Column("responsible_text", "整改责任单位及责任人", wrap=16),
    Column("supervisor_text", "监督责任单位及责任人", wrap=16),
    Column("deadline", "整改时限"),
    Column("status_label", "整改状态"),
    Column("closed_on", "销号日期"),
    Column("overdue_days", "超期天数"),
]

PROBLEM_DETAIL_COLUMNS = [
    Column("no", "序号"),
    Column("problem_id", "问题编号"),
    Column("division_code", "区划代码"),
    Column("found_by", "发现人", wrap=16),
    Column("found_by_unit", "发现单位", wrap=16),
    Column("actions", "整改措施(条)"),
    Column("responsible_signed_on", "责任方销号日期"),
    Column("supervisor_signed_on", "监督方销号日期"),
    Column("overdue_label", "是否超期"),
    Column("rejections", "退回次数"),
    Column("accountability", "问责(次)"),
]

RECTIFICATION_COLUMNS = [
    Column("no", "序号"),
    Column("problem_id", "问题编号"),
    Column("township", "乡镇", wrap=8),
    Column("village", "村", wrap=8),
    Column("entry_label", "记录类型", wrap=10),
    Column("party_label", "责任方/监督方"),
    Column("acted_on", "日期"),
    Column("actor_text", "办理人及单位", wrap=16),
    Column("content", "整改措施/理由", wrap=32),
    Column("persons", "被问责人员", wrap=12),
    Column("evidence", "佐证材料", wrap=16),
    Column("status_label", "办理后状态"),
    Column("overdue_days", "超期天数"),
]


def label_of(enum: type[Labelled], value: str | None) -> str:
    if value is None:
        return ""
    try:
        return enum(value).label
    except ValueError:
        return value


def _who(name: str | None, ident: str | None) -> str:
    if name and ident:
        return f"{name} ({ident})"
    return name or ident or ""


def problem_view(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Problem-ledger rows with their Chinese labels beside the codes."""
    out = []
    for i, r in enumerate(rows, start=1):
        out.append(dict(
            r, no=i, kind_label=label_of(ProblemKind, r["kind"]), source_label=label_of(ProblemSource, r["source"]),
            found_by=_who(r["found_by_name"], r["found_by_id"]), status_label=status_label(r["status"]),
            responsible=_who(r["responsible_name"], r["responsible_person"]),
            supervisor=_who(r["supervisor_name"], r["supervisor_person"]),
            overdue_label="是" if r["overdue"] else "否",
        ))
    return out


def rectification_view(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from projections.ledger import ENTRY_LABELS

    out = []
    for i, r in enumerate(rows, start=1):
        out.append(dict(
            r, no=i, entry_label=ENTRY_LABELS.get(r["entry"], r["entry"]),
            party_label=label_of(AccountableParty, r["party"]), actor=_who(r["actor_name"], r["actor_id"]),
            actor_role_label=label_of(Role, r["actor_role"]), status_label=status_label(r["status_after"]),
        ))
    return out


def _unit_person(unit: str | None, person: str | None) -> str:
    return "\n".join(p for p in (unit or "", person or "") if p)


def write_ledger_xlsx(path: Path, problems: list[dict[str, Any]], rectifications: list[dict[str, Any]],
                      as_of: date, division: str | None = None, places: Places | None = None) -> None:
    """The ledger workbook: 问题台账 and 整改台账 printable on A4 landscape, and 问题台账(明细) with the rest."""
    places = places or Places()
    area = places.area(division, (r["division_code"] for r in problems))
    named = {"township": places.township, "village": places.village}
    problem_rows = [dict(r, **{k: f(r["division_code"]) for k, f in named.items()},
                         found_by_unit=places.unit(r["found_by_unit"]),
                         responsible_text=_unit_person(places.unit(r["responsible_unit"]),
                                                       r["responsible_name"] or r["responsible_person"]),
                         supervisor_text=_unit_person(places.unit(r["supervisor_unit"]),
                                                      r["supervisor_name"] or r["supervisor_person"]))
                    for r in problem_view(problems)]
    entry_rows = [dict(r, **{k: f(r["division_code"]) for k, f in named.items()},
                       actor_text=_unit_person(places.unit(r["actor_unit"]), r["actor_name"] or r["actor_id"]))
                  for r in rectification_view(rectifications)]
    closed = sum(1 for r in problems if r["status"] == "closed")
    overdue = sum(1 for r in problems if r["overdue"])
    counts = f"共 {len(problems)} 个问题, 已销号 {closed} 个, 超期未销号 {overdue} 个"
    wb = new_workbook()
    write_table(sheet(wb, "问题台账"), title(area, "防止返贫问题台账", as_of), subtitle(as_of, counts),
                PROBLEM_COLUMNS, problem_rows, form=True)
    write_table(sheet(wb, "整改台账"), title(area, "防止返贫整改台账", as_of),
                subtitle(as_of, f"共 {len(entry_rows)} 条办理记录"), RECTIFICATION_COLUMNS, entry_rows, form=True)
    write_table(sheet(wb, "问题台账(明细)"), title(area, "问题台账明细", as_of), subtitle(as_of, counts),
                PROBLEM_DETAIL_COLUMNS, problem_rows)
    wb.save(path)


# ---------------------------------------------------------------------- the roster


def risks_text(values: list[str]) -> str:
    return "、".join(label_of(RiskType, r) for r in values)


def measures_text(measures: list[dict[str, Any]]) -> str:
    return "、".join(
        f"{label_of(MeasureType, m['measure_type']) or m['measure_id']}({MEASURE_STATUS.get(m['status'], m['status'])})"
        for m in measures
    )


def _yes_no(value: bool | None) -> str:
    return "" if value is None else ("是" if value else "否")


#: the printed roster (A4 landscape): who, where, why monitored, since when, income, who helps and how
ROSTER_COLUMNS = [
    Column("no", "序号"),
    Column("township", "乡镇", wrap=8),
    Column("village", "村", wrap=8),
    Column("household_id", "户编号"),
    Column("head_name", "户主姓名"),
    Column("household_size", "家庭人口"),
    Column("category_label", "监测对象类型"),
    Column("risks_label", "风险类型", wrap=14),
    Column("included_on", "纳入监测日期"),
    Column("per_capita_income", "人均纯收入(元)"),
    Column("labour_label", "有劳动力"),
    Column("cadre_text", "帮扶责任人", wrap=14),
    Column("measures_label", "帮扶措施", wrap=24),
    Column("stage_label", "状态"),
]

#: the rest of each household's roster row, keyed by 户编号
ROSTER_DETAIL_COLUMNS = [
    Column("no", "序号"),
    Column("household_id", "户编号"),
    Column("division_code", "区划代码"),
    Column("household_type_label", "户类型"),
    Column("relocated_label", "易地搬迁户"),
    Column("resettlement_site", "安置点", wrap=16),
    Column("eliminated_on", "风险消除日期"),
    Column("exit_mode_label", "消除方式"),
    Column("income_assessed_on", "收入核算日期"),
    Column("housing_label", "住房"),
    Column("water_label", "饮水安全"),
    Column("measures_planned", "措施数"),
    Column("measures_implemented", "已落实措施数"),
]

MEASURE_COLUMNS = [
    Column("no", "序号"),
    Column("household_id", "户编号"),
    Column("measure_id", "措施编号"),
    Column("type_label", "措施类型"),
    Column("addresses_label", "针对风险", wrap=14),
    Column("department", "责任部门", wrap=14),
    Column("responsible", "责任人", wrap=10),
    Column("planned_on", "计划日期"),
    Column("implemented_on", "落实日期"),
    Column("ended_on", "结束日期"),
    Column("status_label", "状态"),
]


def roster_view(rows: list[dict[str, Any]], places: Places) -> list[dict[str, Any]]:
    """Roster rows with places as names and Chinese labels beside the codes."""
    return [dict(
        r, no=i, township=places.township(r["division_code"]), village=places.village(r["division_code"]),
        category_label=label_of(Category, r["category"]), risks_label=risks_text(r["risk_types"]),
        labour_label=_yes_no(r["has_labour"]), stage_label=label_of(Stage, r["stage"]),
        cadre_text="\n".join(p for p in (r["cadre_name"] or "", places.unit(r["cadre_unit"])) if p),
        measures_label=measures_text(r["measures"]), household_type_label=label_of(HouseholdType, r["household_type"]),
        relocated_label=_yes_no(r["relocated"]),
        exit_mode_label=label_of(ExitMode, r["exit_mode"]) if r["eliminated_on"] else "",
        housing_label=label_of(Housing, r["housing"]), water_label=_yes_no(r["drinking_water_safe"]),
    ) for i, r in enumerate(rows, start=1)]


def measure_view(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    measures = [m for r in rows for m in r["measures"]]
    return [dict(m, no=i, type_label=label_of(MeasureType, m["measure_type"]),
                 addresses_label=risks_text(m["addresses"]), status_label=MEASURE_STATUS.get(m["status"], m["status"]))
            for i, m in enumerate(measures, start=1)]


def write_roster_xlsx(path: Path, rows: list[dict[str, Any]], as_of: date | None = None, division: str | None = None,
               places: Places | None = None) -> None:
    """The roster as a printable workbook: 监测对象名单 (A4 landscape), 名单(其他信息) with the rest of each
    row, and 帮扶措施. Rows carry `head_name` (the household head) where the caller read it."""
    places = places or Places()
    as_of = as_of or date.today()
    area = places.area(division, (r["division_code"] or "" for r in rows))
    view = roster_view(rows, places)
    measures = measure_view(rows)
    wb = new_workbook()
    write_table(sheet(wb, "监测对象名单"), title(area, "防返贫监测对象名单", as_of),
                subtitle(as_of, f"共 {len(rows)} 户"), ROSTER_COLUMNS, view)
    write_table(sheet(wb, "名单(其他信息)"), title(area, "防返贫监测对象名单（其他信息）", as_of),
                subtitle(as_of, f"共 {len(rows)} 户"), ROSTER_DETAIL_COLUMNS, view)
    write_table(sheet(wb, "帮扶措施"), title(area, "监测对象帮扶措施", as_of),
                subtitle(as_of, f"共 {len(measures)} 项"), MEASURE_COLUMNS, measures)
    wb.save(path)
