"""Reading the national system's "（自定义）监测对象信息" export (.xlsx) and storing it as imported history.

The workbook has two title rows, the header on the third row, one row per person, every cell text. Headers
are normalised (spaces, half-width brackets) and known aliases mapped to the canonical names of
`shared/NATIONAL_EXPORT.md`; unknown columns are ignored; every required column that is missing is named.
Village names become division codes through a table the user supplies (CSV: code, county, township,
village). Each row is checked on its own: an unreadable row is reported with its row number and reason and
the rest goes in. Each row is read by `national_rows`; the application stores each household's facts
(`CaseManagement.import_facts`, the domain side in `casecore.legacy`).
"""

from __future__ import annotations

import csv
import pickle
import re
import sqlite3
import tempfile
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from adapters.importers import national_rows as rows_
from casecore import legacy
from casecore.application import CaseManagement
from casecore.values import check_division_code

#: the header is on this row (two title rows above it)
HEADER_ROW = 3

COLUMNS = (
    "县", "乡", "村", "户编号", "人编号", "姓名", "证件号码", "证件类型", "出生日期", "性别", "民族", "与户主关系",
    "户类型", "监测对象类别", "整户无劳动能力兜底保障户", "健康状况", "劳动技能", "在校生状况",
    "义务教育阶段未上学原因",
    *rows_.RISK_COLUMNS, "识别监测时间", "风险是否已消除", "风险消除方式", "消除监测时间",
    "人均纯收入（元）", "工资性收入", "生产经营性收入", "财产性收入", "转移性收入", "生产经营性支出", "合规自付支出",
    "理赔收入",
    "是否危房户", "是否解决安全饮用水", "是否义务教育阶段适龄儿童少年失学辍学",
    "是否有家庭成员未参加城乡居民（职工）基本医疗保险", "是否参加城乡居民基本医疗保险", "是否参加城镇职工基本医疗保险",
    "是否参加大病保险", "享受低保政策情况", "享受特困供养政策情况",
    *rows_.MEASURE_COLUMNS, "实施开发式帮扶措施情况",
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
    if type(value) is str:  # nearly every cell: the national system writes text
        return value.strip()
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
        """Township and village names by code, for `adapters.readside.places`."""
        from adapters.readside.places import names_of_table

        return names_of_table((code, township, village) for (_, township, village), code in self.codes.items())


def _name(text: str) -> str:
    return re.sub(r"\s+", "", text or "")


# ---------------------------------------------------------------------------------------------- the workbook


@dataclass
class Sheet:
    """The export's header mapping and its data rows, read lazily (one row in memory at a time)."""

    columns: dict[int, str]
    header_row: int
    rows: Iterator[tuple[int, dict[str, str]]]
    total_rows: int
    missing_optional: list[str]
    #: the reader that reads it: "stream", "calamine", "openpyxl" or "csv"
    reader: str = "openpyxl"


#: readers of a workbook, fastest first; "auto" takes the first that opens the file. "stream" is
#: python-calamine-plus streaming the sheet row by row (xlsx/xlsm only, memory flat whatever the file's size);
#: "calamine" is python-calamine, which reads the whole sheet into memory (464 MB peak for a 15 MB,
#: 100,000-row export: see docs/benchmarks.md, "Import"), so "auto" tries it only for workbooks up to
#: CALAMINE_MAX_BYTES (an .xls or .ods the streaming reader cannot read); openpyxl in read-only mode (slower,
#: in constant memory) reads what neither does
READERS = ("stream", "calamine", "openpyxl")
CALAMINE_MAX_BYTES = 16 * 2**20


def open_export(path: Path, reader: str = "auto") -> Sheet:
    """Open the export (.xlsx, or .csv with the same header rows), find the header (third row), map the
    columns. Raises ExportUnreadable naming every required column that is missing. `reader`: "auto"
    (the streaming reader where it is installed and reads the file, else python-calamine for a workbook up
    to CALAMINE_MAX_BYTES, else openpyxl in read-only mode), "stream", "calamine", "openpyxl" or "csv"."""
    if reader == "csv" or (reader == "auto" and path.suffix.lower() == ".csv"):
        return _sheet(path, "csv", *_csv_rows(path))
    failures = []
    readers: tuple[str, ...] = (reader,)
    if reader == "auto":
        readers = tuple(r for r in READERS if r != "calamine" or _size(path) <= CALAMINE_MAX_BYTES)
    for name in readers:
        try:
            opened = _OPENERS[name](path)
        except Exception as exc:  # not installed (ImportError), or the many kinds a non-workbook raises
            failures.append(f"{name}: {exc}")
            continue
        return _sheet(path, name, *opened)
    raise ExportUnreadable(f"无法打开工作簿 {path.name}: {'; '.join(failures)}。请确认它是国家系统导出的"
                           f" .xlsx 文件 (在表格软件中另存为 .xlsx), 或是表头相同的 .csv (--reader csv)")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _sheet(path: Path, reader: str, values: Iterator[list[Any]], total: int, close: Callable[[], None]) -> Sheet:
    """The header from the first rows of `values`, then the data rows lazily."""
    head: list[list[Any]] = []
    for row in values:
        head.append(list(row))
        if len(head) >= HEADER_ROW and "户编号" in {normalise(v) for v in head[-1]}:
            break
        if len(head) >= 10:
            break
    found = next((i + 1 for i, r in enumerate(head) if "户编号" in {normalise(v) for v in r}), None)
    if found is None:
        close()
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
        close()
        raise ExportUnreadable(f"{path.name} 缺少必需的列: {'、'.join(missing)}")
    optional = [c for c in COLUMNS if c not in columns.values() and c not in REQUIRED and c != "帮扶责任人"]
    pending = head[header_row:]  # rows read past the header while looking for it

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        try:
            n = header_row
            for values_ in _chain(pending, values):
                n += 1
                if values_ is None or all(v in (None, "") for v in values_):
                    continue
                yield n, {name: cell_text(values_[i]) if i < len(values_) else "" for i, name in columns.items()}
        finally:
            close()

    return Sheet(columns, header_row, rows(), max(0, total - header_row), optional, reader)


def _chain(first: list[list[Any]], rest: Iterator[list[Any]]) -> Iterator[list[Any]]:
    yield from first
    yield from rest


def _openpyxl_rows(path: Path) -> tuple[Iterator[list[Any]], int, Callable[[], None]]:
    from openpyxl import load_workbook

    wb = load_workbook(path, read_only=True, data_only=True)
    ws = wb.worksheets[0]
    return (list(r) for r in ws.iter_rows(values_only=True)), ws.max_row or 0, wb.close


def _stream_rows(path: Path) -> tuple[Iterator[list[Any]], int, Callable[[], None]]:
    """The first sheet's rows decoded from the archive as they are iterated (python-calamine-plus): from row 1
    and column A, a missing cell as "", the shared-strings table the only part of the file held whole."""
    from python_calamine_plus import CalamineWorkbook

    wb = CalamineWorkbook.from_path(str(path))
    try:
        stream = wb.stream_sheet_by_index(0)
        first = next(stream, None)  # a format it cannot stream fails here, so that the next reader is tried
    except Exception:
        wb.close()
        raise

    def rows() -> Iterator[list[Any]]:
        if first is not None:
            yield first
            yield from stream

    return rows(), _declared_rows(path), wb.close


def _declared_rows(path: Path) -> int:
    """The last row of the first sheet's declared <dimension> (0 when it declares none): the progress total."""
    try:
        with zipfile.ZipFile(path) as archive:
            book = archive.read("xl/workbook.xml").decode("utf-8", "replace")
            rels = archive.read("xl/_rels/workbook.xml.rels").decode("utf-8", "replace")
            first = re.search(r'<(?:\w+:)?sheet\b[^>]*?\br:id="([^"]+)"', book)
            target = None
            for rel in re.findall(r"<(?:\w+:)?Relationship\b[^>]*>", rels):
                found = re.search(r'\bTarget="([^"]+)"', rel)
                if first and found and re.search(rf'\bId="{re.escape(first.group(1))}"', rel):
                    target = found.group(1)
            if target is None:
                return 0
            with archive.open(target.lstrip("/") if target.startswith("/") else f"xl/{target}") as sheet:
                head = sheet.read(8192).decode("utf-8", "replace")
        dimension = re.search(r'<(?:\w+:)?dimension\s+ref="[A-Z]*\d*:?[A-Z]*(\d+)"', head)
        return int(dimension.group(1)) if dimension else 0
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return 0


def _calamine_rows(path: Path) -> tuple[Iterator[list[Any]], int, Callable[[], None]]:
    from python_calamine import CalamineWorkbook

    wb = CalamineWorkbook.from_path(str(path))
    ws = wb.get_sheet_by_index(0)
    # calamine's rows start at the first used cell: pad so that row numbers are the workbook's
    top, left = ws.start or (0, 0)
    pad = [None] * left

    def rows() -> Iterator[list[Any]]:
        for _ in range(top):
            yield []
        for r in ws.iter_rows():
            yield [*pad, *r] if left else r

    return rows(), top + ws.height, wb.close


def _csv_rows(path: Path) -> tuple[Iterator[list[Any]], int, Callable[[], None]]:
    try:
        fh = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise ExportUnreadable(f"无法读取 {path.name}: {exc}") from None
    return csv.reader(fh), 0, fh.close


_OPENERS: dict[str, Callable[[Path], tuple[Iterator[list[Any]], int, Callable[[], None]]]] = {
    "stream": _stream_rows, "calamine": _calamine_rows, "openpyxl": _openpyxl_rows}


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
    #: households whose responsible cadre this import recorded as unknown (the export has no 帮扶责任人 column)
    cadre_unknown: int = 0
    #: the reader that read the file ("stream", "calamine", "openpyxl" or "csv")
    reader: str = ""

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
            "cadre_unknown": self.cadre_unknown,
            "reader": self.reader,
        }


Progress = Callable[[str, int, int], None]


def import_national(app: CaseManagement, path: Path, divisions: Divisions, exported_on: date,
                    progress: Progress | None = None, batch_size: int = 200, reader: str = "auto") -> Report:
    """Import the export at `path` in bounded memory: read and check every row (parse → validate), keep the
    readable rows in a temporary table keyed by 户编号 (a household whose rows are not contiguous is still
    assembled whole), then assemble and store the households `batch_size` at a time, each only with what
    the store does not hold yet. `progress(phase, done, total)`."""
    from adapters.readside import places

    sheet = open_export(path, reader)
    places.remember(app, divisions.place_names())
    report = Report(file=path.name, missing_optional=sheet.missing_optional, reader=sheet.reader)
    has_measures = all(c in sheet.columns.values() for c in rows_.MEASURE_COLUMNS)
    has_cadre = "帮扶责任人" in sheet.columns.values()
    rejected_by_household: Counter = Counter()
    with tempfile.TemporaryDirectory(prefix="casecore-import-") as tmp, _Spill(Path(tmp) / "rows.db") as spill:
        done = 0
        for n, raw in sheet.rows:
            done += 1
            if progress and done % 1000 == 0:
                progress("read", done, sheet.total_rows)
            row = _read(n, raw, divisions, report)
            if row is None:
                if raw.get("户编号"):
                    rejected_by_household[raw["户编号"]] += 1
                continue
            spill.add(row)
        if progress:
            progress("read", done, done)
        spill.flush()
        source = legacy.Source(file_name=path.name, exported_on=exported_on)
        total = spill.households()
        chunk: list[tuple[str, list[legacy.Row]]] = []
        stored = 0
        for hid, rows in spill.by_household():
            chunk.append((hid, _unique_people(rows, report)))
            if len(chunk) >= batch_size:
                _import_chunk(app, chunk, rejected_by_household, source, report, has_measures, has_cadre)
                stored += len(chunk)
                chunk = []
                if progress:
                    progress("store", stored, total)
        if chunk:
            _import_chunk(app, chunk, rejected_by_household, source, report, has_measures, has_cadre)
            stored += len(chunk)
        if progress:
            progress("store", stored, total)
    report.rejected.sort()
    return report


def _read(n: int, raw: dict[str, str], divisions: Divisions, report: Report) -> legacy.Row | None:
    """One row checked (its division mapped, its cells read), or None with the reason in the report."""
    code = divisions.code(raw.get("县", ""), raw.get("乡", ""), raw.get("村", ""))
    if code is None:
        names = (raw.get("县", ""), raw.get("乡", ""), raw.get("村", ""))
        report.unmatched_divisions[names] += 1
        report.rejected.append((n, f"区划“{'/'.join(names)}”在区划表中找不到"))
        return None
    try:
        return rows_.read_row(n, raw, code)
    except rows_.LegacyRowError as exc:
        report.rejected.append((n, str(exc)))
        return None


class _Spill:
    """Readable rows on disk (a temporary SQLite table keyed by household and row number), so that the
    import holds one batch of rows at a time whatever the file's size and however its rows are ordered."""

    BUFFER = 100  # rows held before they are written (about 1 KB each)

    def __init__(self, path: Path):
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=OFF")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute("PRAGMA cache_size=-16000")  # 16 MB of page cache at most
        self.db.execute("CREATE TABLE rows (household TEXT NOT NULL, n INTEGER NOT NULL, row BLOB NOT NULL)")
        self.buffer: list[tuple[str, int, bytes]] = []
        self.db.execute("BEGIN")

    def __enter__(self) -> _Spill:
        return self

    def __exit__(self, *exc: object) -> None:
        self.db.close()

    def add(self, row: legacy.Row) -> None:
        self.buffer.append((row.household_id, row.number, pickle.dumps(row, pickle.HIGHEST_PROTOCOL)))
        if len(self.buffer) >= self.BUFFER:
            self._write()

    def _write(self) -> None:
        self.db.executemany("INSERT INTO rows VALUES (?, ?, ?)", self.buffer)
        self.buffer = []

    def flush(self) -> None:
        self._write()
        self.db.execute("COMMIT")
        self.db.execute("CREATE INDEX ix_rows ON rows (household, n)")

    def households(self) -> int:
        return int(self.db.execute("SELECT count(DISTINCT household) FROM rows").fetchone()[0])

    def by_household(self) -> Iterator[tuple[str, list[legacy.Row]]]:
        """Each household's rows in file order, households in the order of their first row."""
        firsts = self.db.execute("SELECT household, min(n) AS first FROM rows GROUP BY household ORDER BY first")
        cursor = self.db.cursor()
        for hid, _ in firsts:
            rows = [pickle.loads(blob) for (blob,) in cursor.execute(
                "SELECT row FROM rows WHERE household = ? ORDER BY n", (hid,))]
            yield hid, rows


def _import_chunk(app: CaseManagement, chunk: list[tuple[str, list[legacy.Row]]], rejected: Counter,
                  source: legacy.Source, report: Report, has_measures: bool, has_cadre: bool) -> None:
    households = [rows_.assemble(rows, rejected_rows=rejected.get(hid, 0), has_measure_columns=has_measures,
                                 has_cadre_column=has_cadre) for hid, rows in chunk]
    results = app.import_facts(households, source)
    for household, result in zip(households, results, strict=True):
        report.households += 1
        report.people += len(household.rows)
        report.events += result.events
        report.households_new += int(result.created)
        report.households_changed += int(result.events > 0 and not result.created)
        report.notes.extend(result.notes)
        report.cadre_unknown += int(result.cadre_unknown)


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
