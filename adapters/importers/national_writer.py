"""Writing a workbook the way the national system exports it — for tests and the demo.

Two title rows, the header on the third row, one row per person with the household's columns repeated on
each, every cell text (an empty cell is an empty string), and the spellings of other years (aliases such as
`公益性岗位帮扶`) when asked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from pathlib import Path

from adapters.importers.national import COLUMNS, Divisions
from adapters.importers.national_rows import MEASURE_COLUMNS
from adapters.output.sheets import write_rows
from casecore.application import CaseManagement
from casecore.household import Household
from casecore.values import Category, ExitMode, Stage, make_person_id

#: the spelling some years use, for tests that the importer maps them
YEAR_2021_ALIASES = {"公益岗位帮扶": "公益性岗位帮扶", "证件号码": "身份证号码"}

TITLE = "（自定义）监测对象信息"


def person(seq: int, born: date = date(1980, 1, 2), name: str | None = None, relation: str = "户主",
           labour: str = "普通劳动力", area6: str = "522631", **columns: str) -> dict[str, str]:
    """One person's own columns (canonical names → text), with a valid citizen ID number."""
    pid = make_person_id(area6, born, seq % 1000)
    return {"人编号": f"P{seq}", "姓名": name or f"成员{seq}", "证件号码": pid, "证件类型": "居民身份证",
            "出生日期": born.strftime("%Y%m%d"), "性别": "男" if int(pid[16]) % 2 else "女", "民族": "汉族",
            "与户主关系": relation, "健康状况": "健康", "劳动技能": labour, "在校生状况": "",
            "是否参加城乡居民基本医疗保险": "是", "是否参加城镇职工基本医疗保险": "否", **columns}


def household_rows(household: Mapping[str, str], people: Sequence[Mapping[str, str]]) -> list[dict[str, str]]:
    """The export's rows of one household: its columns repeated on each person's row."""
    return [{**household, **p} for p in people]


def write_export(path: Path, rows: Iterable[Mapping[str, str]], columns: Sequence[str] = COLUMNS,
                 aliases: Mapping[str, str] | None = None, exported_on: date | None = None,
                 unit: str = "", extra_columns: Sequence[str] = ("备注",)) -> Path:
    """Write `rows` (canonical column → text) as the national system does. `columns` chooses and orders the
    columns (leave some out to imitate another year's export); `aliases` renames headers; `extra_columns`
    are columns the importer does not know (left empty)."""
    aliases = dict(aliases or {})
    if path.suffix.lower() == ".csv":
        return _write_csv(path, rows, columns, aliases, exported_on, unit, extra_columns)
    headers = [aliases.get(c, c) for c in columns] + list(extra_columns)
    stamp = f"导出时间: {exported_on:%Y-%m-%d}" if exported_on else "导出时间:"
    head = [[TITLE] + [""] * (len(headers) - 1), [f"{stamp}    导出单位: {unit}"] + [""] * (len(headers) - 1),
            headers]
    body = ([str(row.get(c, "")) for c in columns] + ["" for _ in extra_columns] for row in rows)
    return write_rows(path, "监测对象信息", head, body, text=True)


def _write_csv(path: Path, rows: Iterable[Mapping[str, str]], columns: Sequence[str], aliases: Mapping[str, str],
               exported_on: date | None, unit: str, extra_columns: Sequence[str]) -> Path:
    """The same sheet as CSV (UTF-8 with a BOM, as spreadsheet programs save it)."""
    import csv

    headers = [aliases.get(c, c) for c in columns] + list(extra_columns)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([TITLE] + [""] * (len(headers) - 1))
        stamp = f"导出时间: {exported_on:%Y-%m-%d}" if exported_on else "导出时间:"
        w.writerow([f"{stamp}    导出单位: {unit}"] + [""] * (len(headers) - 1))
        w.writerow(headers)
        for row in rows:
            w.writerow([str(row.get(c, "")) for c in columns] + ["" for _ in extra_columns])
    return path


def write_divisions(path: Path, villages: Iterable[tuple[str, str, str, str]]) -> Path:
    """The division table the importer reads: (code, county, township, village) rows."""
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["code", "county", "township", "village"])
        for row in villages:
            w.writerow(row)
    return path


def rows_of(household: Household, divisions: Divisions) -> list[dict[str, str]]:
    """A stored household as the national export's rows (canonical column → text), one per current member:
    the household, its division (names from the division table), the members, the case's category and
    dates and the measures from the facts that hold them; every other column as the last import kept it."""
    names = {code: place for place, code in divisions.codes.items()}
    county, township, village = names.get(household.division_code, ("", "", ""))
    kept = getattr(household, "source_rows", None) or {}
    eliminated = household.stage == Stage.RISK_ELIMINATED.value and household.eliminated_on is not None
    case = {
        "县": county, "乡": township, "村": village, "户编号": household.household_id,
        "监测对象类别": Category(household.category).label if household.category else "",
        "识别监测时间": f"{household.included_on:%Y%m}" if household.included_on else "",
        "风险消除方式": ExitMode(household.exit_mode).label if eliminated and household.exit_mode else "",
        "消除监测时间": f"{household.eliminated_on:%Y%m}" if eliminated and household.eliminated_on else "",
    }
    for column, mtype in MEASURE_COLUMNS.items():
        case[column] = ",".join(m["responsible"] for m in household.measures.values()
                                if m["measure_type"] == mtype and m["status"] != "ended")
    rows = []
    for pid, member in household.members.items():
        if member.get("removed_on") is not None:
            continue
        rows.append({"证件号码": pid, **kept.get(pid, {}), **case, "姓名": member.get("name") or "",
                     "与户主关系": member.get("relation") or ""})
    return rows


def export_store(app: CaseManagement, path: Path, household_ids: Iterable[str], divisions: Divisions,
                 columns: Sequence[str] = COLUMNS, exported_on: date | None = None) -> Path:
    """Write the stored households `household_ids` as a national export (the round trip of an import)."""
    rows = (row for hid in household_ids for row in rows_of(app.get_household(hid), divisions))
    return write_export(path, rows, columns=columns, exported_on=exported_on, extra_columns=())
