"""The monthly dispatch (一月一调度一通报): counts per county and township from the activity projection, the
key areas broken out, and the campaign milestones of the policy year — shared by the CLI and the HTTP service."""

from __future__ import annotations

import calendar
from datetime import date
from pathlib import Path
from typing import Any

from adapters.output.sheets import Column, new_workbook, sheet, subtitle, title, write_table
from adapters.readside.places import Places
from casecore.policy import Campaign, PolicyBook
from casecore.values import ProblemSource

COUNT_HEADERS = {
    "lead": "线索(条)",
    "inclusion": "新纳入监测(户)",
    "exit": "风险消除(户)",
    "measure_implemented": "落实帮扶措施(项)",
    "problem_raised": "发现问题(个)",
    "problem_closed": "问题销号(个)",
    "problem_overdue": "超期未销号(个)",
    "accountability": "问责(次)",
}
#: sources of problems found by inspection (督查、巡视、审计、规则筛查), as opposed to self-checks
INSPECTION_SOURCES = tuple(s.value for s in ProblemSource if s != ProblemSource.SELF_CHECK)



def parse_month(text: str) -> tuple[date, date]:
    """`YYYY-MM` → (first day, last day); ValueError when malformed."""
    year, sep, month = text.partition("-")
    if not sep or len(year) != 4 or len(month) != 2 or not (year.isdigit() and month.isdigit()):
        raise ValueError(text)
    y, m = int(year), int(month)
    return date(y, m, 1), date(y, m, calendar.monthrange(y, m)[1])


def county_name(code: str) -> str:
    """The county's name from the national division codes (GB/T 2260), or the code when unknown."""
    return Places().county(code)


def milestones(conn: Any, campaign: Campaign, as_of: date, division: str | None) -> list[dict[str, Any]]:
    """The campaign's milestones as of a date: due or not, and what is outstanding or late where the log can
    tell (screening leads, problems still open at the rectification deadline, inspection findings)."""
    from projections.activity import count_between, open_problems_due_by

    def state(due: date) -> str:
        return "已到期" if as_of > due else "未到期"

    screening_state = ("未开始" if as_of < campaign.screening_from else
                       "进行中" if as_of <= campaign.screening_to else "已结束")
    leads = count_between(conn, "lead", campaign.screening_from, min(as_of, campaign.screening_to), division)
    screened_problems = count_between(conn, "problem_raised", campaign.screening_from,
                                      min(as_of, campaign.screening_to), division)
    open_due = open_problems_due_by(conn, campaign.rectified_by, as_of, division)
    all_found = count_between(conn, "problem_raised", campaign.screening_from, min(as_of, campaign.inspection_by),
                              division)
    inspection_found = _inspection_problems(conn, campaign.screening_from, min(as_of, campaign.inspection_by),
                                            division)
    rectify_late = as_of > campaign.rectified_by and open_due > 0
    return [
        {"key": "plans_by", "label": "制定实施方案", "due": campaign.plans_by, "state": state(campaign.plans_by),
         "late": None, "detail": "方案不在系统中登记, 请人工核对"},
        {"key": "screening", "label": "集中排查整改", "due": campaign.screening_to, "from": campaign.screening_from,
         "state": screening_state, "late": None,
         "detail": f"排查期内登记线索 {leads} 条, 发现问题 {screened_problems} 个"},
        {"key": "rectified_by", "label": "问题全部整改到位并录入系统", "due": campaign.rectified_by,
         "state": state(campaign.rectified_by), "late": open_due if rectify_late else 0,
         "detail": (f"{campaign.rectified_by} 前发现的问题中尚有 {open_due} 个未销号" if open_due
                    else "此前发现的问题均已销号")},
        {"key": "inspection_by", "label": "督查检查", "due": campaign.inspection_by,
         "state": state(campaign.inspection_by), "late": None,
         "detail": f"督查、巡视、审计及规则筛查发现问题 {inspection_found} 个 (各来源合计 {all_found} 个)"},
        {"key": "summary_by", "label": "总结", "due": campaign.summary_by, "state": state(campaign.summary_by),
         "late": None, "detail": "请人工核对"},
        {"key": "report_by", "label": "报告", "due": campaign.report_by, "state": state(campaign.report_by),
         "late": None, "detail": "请人工核对"},
    ]


def _inspection_problems(conn: Any, start: date, end: date, division: str | None) -> int:
    import sqlalchemy as sa

    from projections.ledger import problem_ledger

    p = problem_ledger.c
    q = sa.select(sa.func.count()).where(p.found_on >= start, p.found_on <= end, p.source.in_(INSPECTION_SOURCES))
    if division:
        q = q.where(p.division_code.startswith(division, autoescape=True))
    return int(conn.execute(q).scalar_one())


def build_monthly(conn: Any, policies: PolicyBook, month: str, division: str | None = None,
                  names: dict[str, str] | None = None) -> dict[str, Any]:
    """The monthly dispatch as one object (what `--json` prints and the workbook shows). `names` gives
    townships' names by code where the caller knows them (the log has only codes)."""
    names = names or {}
    from projections.activity import facts_range, monthly_counts

    start, end = parse_month(month)
    counts = monthly_counts(conn, start, end, division)
    policy = policies.on(start)
    figures = _figures(month, end, division, policy.id, counts, names)
    total = figures.pop("total")  # in the order the report has always had
    return {
        **figures,
        "resettlement_sites": counts["resettlement_sites"],
        "total": total,
        "milestones": milestones(conn, policy.campaign, end, division),
        "facts": facts_range(conn, start, end, division),
    }


def _figures(month: str, end: date, division: str | None, policy: str, counts: dict[str, Any],
             names: dict[str, str]) -> dict[str, Any]:
    """The counts per county (each with its townships), the key counties and the total, named."""
    from adapters.readside.places import place_name

    counties: dict[str, dict[str, Any]] = {}
    for row in counts["areas"]:
        c = counties.setdefault(row["county_code"], {"county_code": row["county_code"],
                                                     "county_name": county_name(row["county_code"]),
                                                     **dict.fromkeys(COUNT_HEADERS, 0), "townships": []})
        for k in COUNT_HEADERS:
            c[k] += row[k]
        c["townships"].append({"township_code": row["township_code"],
                               "township_name": names.get(row["township_code"]) or place_name(row["township_code"]),
                               **{k: row[k] for k in COUNT_HEADERS}})
    return {
        "month": month,
        "as_of": end,
        "division": division,
        "policy": policy,
        "counties": list(counties.values()),
        "key_counties": [dict(r, county_name=county_name(r["county_code"])) for r in counts["key_counties"]],
        "total": counts["total"],
    }


def monthly_dispatch(engine: Any, policies: PolicyBook, month: str, division: str | None = None,
                     names: dict[str, str] | None = None) -> dict[str, Any]:
    """The month's counts per county and township, its key counties and its total — what `build_monthly`
    gives for them — read from the kept monthly summary (`projections.monthly_summary`, the month brought up
    to the activity and ledger read models first): a lookup, not a regrouping of the month."""
    from projections import monthly_summary

    start, end = parse_month(month)
    monthly_summary.refresh(engine, month, end)
    with engine.connect() as conn:
        counts = monthly_summary.monthly_figures(conn, month, division)
    return _figures(month, end, division, policies.on(start).id, counts, names or {})


def read_monthly(app: Any, month: str, division: str | None, names: dict[str, str] | None = None) -> dict[str, Any]:
    """Catch up the activity and ledger projections, then build the month's dispatch."""
    from adapters.readside.readmodels import read_models
    from projections.registry import by_name

    with read_models(app, [by_name("ledger"), by_name("activity")]) as rm:
        rm.catch_up()
        with rm.engine.connect() as conn:
            return build_monthly(conn, app.policies, month, division, names)


def area_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Per county (合计) and township; the 总计 row only when it says more than the one county's 合计."""
    rows = []
    for c in report["counties"]:
        rows.append({"area": f"{c['county_name']} 合计", "code": c["county_code"], **c})
        for t in c["townships"]:
            rows.append({"area": f"  {t['township_name']}", "code": t["township_code"], **t})
    counties = report["counties"]
    if not (len(counties) == 1 and all(counties[0][k] == report["total"].get(k) for k in COUNT_HEADERS)):
        rows.append({"area": "总计", "code": report["division"] or "", **report["total"]})
    return rows


def key_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    rows = [{"area_type": "国家乡村振兴重点帮扶县", "area": r["county_name"], "code": r["county_code"], **r}
            for r in report["key_counties"]]
    rows += [{"area_type": "易地扶贫搬迁安置点", "area": r["resettlement_site"], "code": "", **r}
             for r in report["resettlement_sites"]]
    return rows


def write_monthly_xlsx(path: Path, report: dict[str, Any], places: Places | None = None) -> None:
    """Three sheets: 月度调度 (per county and township), 重点区域 (key areas), 专项行动节点 (milestones)."""
    places = places or Places()
    counts = [Column(k, h) for k, h in COUNT_HEADERS.items()]
    as_of: date = report["as_of"]
    area = places.area(report["division"], (c["county_code"] for c in report["counties"]))
    year, month = report["month"].split("-")
    when = f"{int(year)}年{int(month)}月"
    wb = new_workbook()
    write_table(sheet(wb, "月度调度"), title(area, f"{when}防止返贫监测帮扶调度表", as_of),
                subtitle(as_of, f"统计期: {when}"),
                [Column("area", "县/乡镇"), Column("code", "区划代码"), *counts], area_rows(report), form=True)
    write_table(sheet(wb, "重点区域"), title(area, f"{when}重点区域调度表", as_of),
                subtitle(as_of, f"统计期: {when}"),
                [Column("area_type", "类别"), Column("area", "名称", wrap=20), Column("code", "区划代码"), *counts],
                key_rows(report), form=True)
    write_table(sheet(wb, "专项行动节点"), title(area, "专项行动时间节点", as_of),
                subtitle(as_of, f"统计期: {when}"),
                [Column("label", "节点", wrap=16), Column("due", "完成时限"), Column("state", "状态"),
                 Column("late_label", "是否滞后"), Column("detail", "情况", wrap=50)],
                [dict(m, late_label="滞后" if m["late"] else "") for m in report["milestones"]], form=True)
    wb.save(path)
