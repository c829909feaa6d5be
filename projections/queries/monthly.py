"""The monthly roster push (监测对象名单月度推送): the households monitored at a month's end, one row each,
for the provincial data-sharing platform.

Who is on the list is decided as of the month's last day by business date: a household is listed when its
stage at the end of that day (timeline projection, `stages_on`) is monitored (监测中) or in exit
(风险消除程序中). A household included on the 31st is listed; one marked risk-eliminated on the 31st is not.
What the row says about the household (category, risks, size, cadre, income, measures) is the roster
projection's current row — the latest the system knows when the list is made; `stage_now` tells a reader
whether the household has moved on since the month's end.

`COLUMNS` is the published layout (docs/integration.md); a column may be added, never renamed or removed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from projections import timeline as tl
from projections.divisions import within
from projections.roster import roster, roster_measures, roster_members

HEAD_RELATIONS = ("户主", "本人", "head")


@dataclass(frozen=True)
class Column:
    """One published column: its stable key, its Chinese header, what it holds."""

    key: str
    header: str
    description: str


COLUMNS: tuple[Column, ...] = (
    Column("month", "月份", "the month the list is for, YYYY-MM"),
    Column("household_id", "户编号", "the household's id"),
    Column("division_code", "区划代码", "12-digit village division code (统计用区划代码)"),
    Column("county_code", "县代码", "first 6 digits of the division code"),
    Column("township_code", "乡镇代码", "first 9 digits of the division code"),
    Column("household_type", "户类型", "poverty_alleviated 脱贫户 · general 一般农户"),
    Column("relocated", "易地搬迁户", "true/false"),
    Column("resettlement_site", "安置点", "resettlement site of a relocated household, or empty"),
    Column("key_county", "重点帮扶县", "in a national key assistance county: true/false"),
    Column("stage", "月末状态", "stage at the month's end: monitored 监测中 · in_exit 风险消除程序中"),
    Column("category", "监测对象类型",
           "unstable_alleviated 脱贫不稳定户 · marginal 边缘易致贫户 · sudden_hardship 突发严重困难户"),
    Column("risk_types", "风险类型", "risk types (JSON: a list; CSV: joined with ';')"),
    Column("included_on", "纳入监测日期", "date of the household's latest inclusion (ISO date)"),
    Column("head_person_id", "户主身份证号", "citizen ID number of the head of household (masked unless --entitled)"),
    Column("head_name", "户主姓名", "name of the head of household (masked unless --entitled)"),
    Column("household_size", "家庭人口", "members on the register now"),
    Column("has_labour", "有劳动力", "false for a household without labour (整户无劳动力)"),
    Column("cadre_name", "帮扶责任人", "the responsible cadre's name, or empty"),
    Column("cadre_unit", "责任人单位", "the responsible cadre's unit, or empty"),
    Column("per_capita_income", "人均纯收入", "per-capita net income of the newest assessment, decimal yuan"),
    Column("income_assessed_on", "收入核算日期", "date of that assessment"),
    Column("measures_implemented", "已落实措施数", "measures implemented so far (all cycles)"),
    Column("measure_types", "已落实措施类型", "types of the implemented measures (JSON: a list; CSV: joined with ';')"),
    Column("stage_now", "当前状态", "the household's stage when the list was made"),
)
KEYS = tuple(c.key for c in COLUMNS)


def heads_of(conn: Connection, household_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The head of each household (the current member whose relation is 户主, else the first member added),
    as the roster_members row."""
    heads: dict[str, dict[str, Any]] = {}
    members = conn.execute(
        sa.select(roster_members).where(roster_members.c.household_id.in_(household_ids),
                                        roster_members.c.removed_on.is_(None))
        .order_by(roster_members.c.household_id, roster_members.c.added_on.is_not(None),
                  roster_members.c.added_on, roster_members.c.person_id)
    ).mappings()
    for m in members:
        current = heads.get(m["household_id"])
        if current is None or (m["relation"] in HEAD_RELATIONS and current["relation"] not in HEAD_RELATIONS):
            heads[m["household_id"]] = dict(m)
    return heads


def month_end_roster(conn: Connection, month: str, month_end: date, division_prefix: str | None = None
                     ) -> list[dict[str, Any]]:
    """The rows of the push for the month ending on `month_end`, under a division prefix, ordered by division
    code and household id. Set-based: one query for the stages, one per table for the rest."""
    stages = {h: s for h, s in tl.stages_on(conn, month_end).items() if s in tl.MONITORED_STAGES}
    if not stages:
        return []
    query = sa.select(roster).where(roster.c.household_id.in_(sa.bindparam("ids", expanding=True)))
    if division_prefix:
        query = query.where(within(roster.c.division_code, division_prefix))
    ids = sorted(stages)
    rows: list[dict[str, Any]] = []
    heads: dict[str, dict[str, Any]] = {}
    measure_types: dict[str, list[str]] = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        rows.extend(dict(r) for r in conn.execute(query, {"ids": chunk}).mappings())
        heads.update(heads_of(conn, chunk))
        implemented = conn.execute(
            sa.select(roster_measures.c.household_id, roster_measures.c.measure_type)
            .where(roster_measures.c.household_id.in_(chunk), roster_measures.c.implemented_on.is_not(None))
            .order_by(roster_measures.c.household_id, roster_measures.c.implemented_on, roster_measures.c.measure_id)
        )
        for hid, kind in implemented:
            kinds = measure_types.setdefault(hid, [])
            if kind not in kinds:
                kinds.append(kind)
    rows.sort(key=lambda r: (r["division_code"] or "", r["household_id"]))
    out = []
    for r in rows:
        hid = r["household_id"]
        head = heads.get(hid, {})
        out.append({
            "month": month,
            "household_id": hid,
            "division_code": r["division_code"],
            "county_code": r["county_code"],
            "township_code": r["township_code"],
            "household_type": r["household_type"],
            "relocated": bool(r["relocated"]),
            "resettlement_site": r["resettlement_site"],
            "key_county": bool(r["key_county"]),
            "stage": stages[hid],
            "category": r["category"],
            "risk_types": list(r["risk_types"] or []),
            "included_on": r["included_on"],
            "head_person_id": head.get("person_id"),
            "head_name": head.get("name"),
            "household_size": r["household_size"],
            "has_labour": bool(r["has_labour"]),
            "cadre_name": r["cadre_name"],
            "cadre_unit": r["cadre_unit"],
            "per_capita_income": r["per_capita_income"],
            "income_assessed_on": r["income_assessed_on"],
            "measures_implemented": r["measures_implemented"],
            "measure_types": measure_types.get(hid, []),
            "stage_now": r["stage"],
        })
    return out
