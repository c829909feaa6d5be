"""Reading the national system's "（自定义）监测对象信息" export (.xlsx) and storing it as imported history.

The workbook has two title rows, the header on the third row, one row per person, every cell text. Headers
are normalised (spaces, half-width brackets) and known aliases mapped to the canonical names of
`shared/NATIONAL_EXPORT.md`; unknown columns are ignored; every required column that is missing is named.
Village names become division codes through a table the user supplies (CSV: code, county, township,
village). Each row is checked on its own: an unreadable row is reported with its row number and reason and
the rest goes in. The domain side (`casecore.legacy`) turns each household's rows into imported facts.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from casecore import legacy
from casecore.application import CaseManagement, household_stream
from casecore.values import check_division_code

#: the header is on this row (two title rows above it)
HEADER_ROW = 3

COLUMNS = (
    "县", "乡", "村", "户编号", "人编号", "姓名", "证件号码", "证件类型", "出生日期", "性别", "民族", "与户主关系",
    "户类型", "监测对象类别", "整户无劳动能力兜底保障户", "健康状况", "劳动技能", "在校生状况",
    "义务教育阶段未上学原因",
    *legacy.RISK_COLUMNS, "识别监测时间", "风险是否已消除", "风险消除方式", "消除监测时间",
    "人均纯收入（元）", "工资性收入", "生产经营性收入", "财产性收入", "转移性收入", "生产经营性支出", "合规自付支出",
    "理赔收入",
    "是否危房户", "是否解决安全饮用水", "是否义务教育阶段适龄儿童少年失学辍学",
    "是否有家庭成员未参加城乡居民（职工）基本医疗保险", "是否参加城乡居民基本医疗保险", "是否参加城镇职工基本医疗保险",
    "是否参加大病保险", "享受低保政策情况", "享受特困供养政策情况",
    *legacy.MEASURE_COLUMNS, "实施开发式帮扶措施情况",
    "风险消除后是否义务教育阶段适龄儿童少年失学辍学", "风险消除后是否住房损毁",
    "风险消除后是否有家庭成员未参加城乡居民（职工）基本医疗保险", "风险消除后是否饮水设施损毁", "风险消除后工资性收入",
    "风险消除后财产性收入", "风险消除后转移性收入", "风险消除后生产经营性收入", "风险消除后生产经营性支出",
    "风险消除后家庭纯收入", "风险消除后家庭人均纯收入", "风险消除后理赔收入", "风险消除后合规自付支出",
    "信息采集人", "信息采集人联系电话", "户联系电话",
    # not in every export: the responsible cadre (帮扶责任人), read when present
    "帮扶责任人",
)

#: spellings of other years and provinces → the canonical name
ALIASES = {
    "公益性岗位帮扶": "公益岗位帮扶",
    "其他教育帮扶": "教育帮扶",
    "县（市、区）": "县", "县(市、区)": "县", "县区": "县",
    "乡（镇）": "乡", "乡镇": "乡",
    "村（社区）": "村", "行政村": "村",
    "身份证号码": "证件号码", "证件号": "证件号码", "身份证号": "证件号码",
    "人均纯收入": "人均纯收入（元）",
    "家庭人均纯收入（元）": "人均纯收入（元）",
    "监测对象类型": "监测对象类别",
    "识别时间": "识别监测时间",
    "风险消除时间": "消除监测时间",
    "帮扶联系人": "帮扶责任人",
    **{f"致贫返贫风险{i}": f"致贫/返贫风险{i}" for i in range(1, 6)},
    **{f"返贫致贫风险{i}": f"致贫/返贫风险{i}" for i in range(1, 6)},
}

#: without these the export cannot be read as case histories
REQUIRED = ("县", "乡", "村", "户编号", "姓名", "证件号码", "与户主关系", "户类型", "监测对象类别", "劳动技能",
            "致贫/返贫风险1", "识别监测时间", "风险是否已消除", "风险消除方式", "消除监测时间")


class ExportUnreadable(Exception):
    """The workbook or the division table cannot be used at all (the message says what to fix)."""


def normalise(header: Any) -> str:
    text = re.sub(r"\s+", "", "" if header is None else str(header))
    text = text.replace("(", "（").replace(")", "）")
    for alias, canonical in ALIASES.items():
        if text == alias.replace("(", "（").replace(")", "）"):
            return canonical
    return text


def cell_text(value: Any) -> str:
    """A cell as the export's text (the national system writes text; tolerate numbers and dates)."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.strftime("%Y%m%d")
    if isinstance(value, date):
        return value.strftime("%Y%m%d")
    return str(value).strip()


# ---------------------------------------------------------------------------------------------- divisions


@dataclass
class Divisions:
    """Division names → 12-digit codes (from the user's table)."""

    codes: dict[tuple[str, str, str], str]

    @classmethod
    def load(cls, path: Path) -> Divisions:
        try:
            with path.open(encoding="utf-8-sig", newline="") as fh:
                reader = csv.DictReader(fh)
                fields = [f.strip() for f in reader.fieldnames or []]
                missing = [c for c in ("code", "county", "township", "village") if c not in fields]
                if missing:
                    raise ExportUnreadable(
                        f"区划表 {path.name} 缺少列: {', '.join(missing)} (应有 code,county,township,village)")
                codes: dict[tuple[str, str, str], str] = {}
                for n, raw in enumerate(reader, start=2):
                    row = {k.strip(): (v or "").strip() for k, v in raw.items() if k}
                    try:
                        code = check_division_code(row["code"])
                    except ValueError as exc:
                        raise ExportUnreadable(f"区划表 {path.name} 第{n}行: {exc}") from None
                    codes[(_name(row["county"]), _name(row["township"]), _name(row["village"]))] = code
        except (OSError, UnicodeDecodeError) as exc:
            raise ExportUnreadable(f"无法读取区划表 {path}: {exc}") from None
        return cls(codes)

    def code(self, county: str, township: str, village: str) -> str | None:
        return self.codes.get((_name(county), _name(township), _name(village)))

    def place_names(self) -> dict[str, str]:
        """Township and village names by code, for `adapters.places`."""
        from adapters.places import names_of_table

        return names_of_table((code, township, village) for (_, township, village), code in self.codes.items())


def _name(text: str) -> str:
    return re.sub(r"\s+", "", text or "")


# ---------------------------------------------------------------------------------------------- the workbook


@dataclass
class Sheet:
    """The export's header mapping and its data rows."""

    columns: dict[int, str]
    header_row: int
    rows: Iterator[tuple[int, dict[str, str]]]
    total_rows: int
    missing_optional: list[str]


def open_export(path: Path) -> Sheet:
    """Open the workbook, find the header (third row), map the columns. Raises ExportUnreadable naming
    every required column that is missing."""
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a file that is not a workbook
        raise ExportUnreadable(f"无法打开工作簿 {path.name}: {exc}") from None
    ws = wb.worksheets[0]
    head = list(ws.iter_rows(min_row=1, max_row=10, values_only=True))
    header_row = HEADER_ROW
    if len(head) < HEADER_ROW or "户编号" not in {normalise(v) for v in head[HEADER_ROW - 1]}:
        found = next((i + 1 for i, r in enumerate(head) if "户编号" in {normalise(v) for v in r}), None)
        if found is None:
            raise ExportUnreadable(
                f"{path.name}: 第{HEADER_ROW}行不是表头 (找不到“户编号”列); 请使用国家系统导出的原始文件")
        header_row = found
    columns: dict[int, str] = {}
    for i, v in enumerate(head[header_row - 1]):
        name = normalise(v)
        if name in COLUMNS and name not in columns.values():
            columns[i] = name
    missing = [c for c in REQUIRED if c not in columns.values()]
    if missing:
        raise ExportUnreadable(f"{path.name} 缺少必需的列: {'、'.join(missing)}")
    optional = [c for c in COLUMNS if c not in columns.values() and c not in REQUIRED and c != "帮扶责任人"]
    total = max(0, (ws.max_row or header_row) - header_row)

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        try:
            for n, values in enumerate(ws.iter_rows(min_row=header_row + 1, values_only=True), start=header_row + 1):
                if values is None or all(v in (None, "") for v in values):
                    continue
                yield n, {name: cell_text(values[i]) if i < len(values) else "" for i, name in columns.items()}
        finally:
            wb.close()

    return Sheet(columns, header_row, rows(), total, optional)


# ---------------------------------------------------------------------------------------------- importing


@dataclass
class Report:
    """What an import did."""

    file: str
    households: int = 0
    households_new: int = 0
    households_changed: int = 0
    people: int = 0
    events: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    unmatched_divisions: Counter = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    missing_optional: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "households": self.households,
            "households_new": self.households_new,
            "households_changed": self.households_changed,
            "people": self.people,
            "events": self.events,
            "rejected_rows": [{"row": n, "reason": r} for n, r in self.rejected],
            "unmatched_divisions": [{"county": k[0], "township": k[1], "village": k[2], "rows": v}
                                    for k, v in sorted(self.unmatched_divisions.items())],
            "notes": self.notes,
            "missing_optional_columns": self.missing_optional,
        }


Progress = Callable[[str, int, int], None]


def import_national(app: CaseManagement, path: Path, divisions: Divisions, exported_on: date,
                    progress: Progress | None = None, batch_size: int = 200) -> Report:
    """Import the export at `path`: read and check every row, group by 户编号, store each household's
    imported facts (only what the store does not hold yet). `progress(phase, done, total)`."""
    from adapters import places

    sheet = open_export(path)
    places.remember(app, divisions.place_names())
    report = Report(file=path.name, missing_optional=sheet.missing_optional)
    has_measures = all(c in sheet.columns.values() for c in legacy.MEASURE_COLUMNS)
    groups: dict[str, list[legacy.Row]] = {}
    rejected_by_household: Counter = Counter()
    done = 0
    for n, raw in sheet.rows:
        done += 1
        if progress and done % 500 == 0:
            progress("read", done, sheet.total_rows)
        code = divisions.code(raw.get("县", ""), raw.get("乡", ""), raw.get("村", ""))
        if code is None:
            names = (raw.get("县", ""), raw.get("乡", ""), raw.get("村", ""))
            report.unmatched_divisions[names] += 1
            report.rejected.append((n, f"区划“{'/'.join(names)}”在区划表中找不到"))
            if raw.get("户编号"):
                rejected_by_household[raw["户编号"]] += 1
            continue
        try:
            row = legacy.read_row(n, raw, code)
        except legacy.LegacyRowError as exc:
            report.rejected.append((n, str(exc)))
            if raw.get("户编号"):
                rejected_by_household[raw["户编号"]] += 1
            continue
        groups.setdefault(row.household_id, []).append(row)
    if progress:
        progress("read", done, done)

    source = legacy.Source(file_name=path.name, exported_on=exported_on)
    items = [(hid, _unique_people(rows, report)) for hid, rows in groups.items()]
    for i in range(0, len(items), batch_size):
        chunk = items[i : i + batch_size]
        _import_chunk(app, chunk, rejected_by_household, source, report, has_measures)
        if progress:
            progress("store", min(i + batch_size, len(items)), len(items))
    report.rejected.sort()
    return report


def _import_chunk(app: CaseManagement, chunk: list[tuple[str, list[legacy.Row]]], rejected: Counter,
                  source: legacy.Source, report: Report, has_measures: bool, retry: bool = True) -> None:
    results = []
    for hid, rows in chunk:
        household = legacy.assemble(rows, rejected_rows=rejected.get(hid, 0),
                                    has_measure_columns=has_measures)
        try:
            existing = app.repository.get(household_stream(hid))
        except AggregateNotFoundError:
            existing = None
        results.append((household, legacy.import_household(existing, household, source)))
    changed = [r.household for _, r in results if r.household is not None]
    if changed:
        try:
            app.save(*changed)
        except IntegrityError:  # another writer touched one of these households meanwhile: read them again
            if not retry:
                raise
            for agg in changed:
                agg.collect_events()
            _import_chunk(app, chunk, rejected, source, report, has_measures, retry=False)
            return
    cache = getattr(app, "_cache", None)
    for household, result in results:
        if cache is not None:
            cache.pop(household_stream(household.household_id), None)
        report.households += 1
        report.people += len(household.rows)
        report.events += result.events
        report.households_new += int(result.created)
        report.households_changed += int(result.events > 0 and not result.created)
        report.notes.extend(result.notes)


def _unique_people(rows: list[legacy.Row], report: Report) -> list[legacy.Row]:
    """One row per person: a person listed twice in one household keeps the first row."""
    seen: dict[str, legacy.Row] = {}
    for r in rows:
        if r.person_id in seen:
            first = seen[r.person_id].number
            report.rejected.append((r.number, f"证件号码 {r.person_id} 在户 {r.household_id} 中重复 (见第{first}行)"))
            continue
        seen[r.person_id] = r
    return list(seen.values())


def exported_on_from_name(path: Path) -> date | None:
    """The export's date when its file name carries one (…20220630….xlsx)."""
    m = re.search(r"(20\d{2})[-_]?(\d{2})[-_]?(\d{2})", path.stem)
    if m:
        try:
            return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            return None
    return None
