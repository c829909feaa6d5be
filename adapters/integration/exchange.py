"""Exchange with the provincial data-sharing platform and the industry departments (数据共享交换):

- the monthly roster push out (`roster_push`: JSON or CSV, columns of `projections.queries.monthly.COLUMNS`);
- the measures departments report back in (`read_measure_rows` → `measure_commands`): each good row becomes
  `plan_measure` and, when it has an implementation date, `implement_measure`, with command ids derived from
  the row's household and measure, so importing the same file again changes nothing.

Bad rows are reported with their line number and the reason; the other rows still go in.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from adapters.integration.feed import mask
from adapters.integration.intake import validation_message
from adapters.output.sheets import csv_text
from casecore import commands as c
from casecore.errors import CaseError, ValidationFailed
from casecore.values import MeasureType, RiskType
from projections.queries.monthly import COLUMNS, KEYS

# ---------------------------------------------------------------------------------------------------- roster out

LIST_SEPARATOR = ";"


#: the push's numeric columns (published as JSON strings for exactness, written to CSV as numbers)
NUMERIC_KEYS = frozenset({"household_size", "per_capita_income", "measures_implemented"})


def _csv_value(key: str, value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return LIST_SEPARATOR.join(str(v) for v in value)
    if key in NUMERIC_KEYS and isinstance(value, str):
        try:
            return Decimal(value)
        except ArithmeticError:
            return value
    return value


def _json_value(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def push_rows(rows: Iterable[dict[str, Any]], masked: bool = True) -> list[dict[str, Any]]:
    """The rows as published: the documented keys in order, personal data (the head's ID number and name, the
    cadre's name) masked unless the recipient is entitled (`masked=False`)."""
    out = [{k: _json_value(r.get(k)) for k in KEYS} for r in rows]
    return mask(out) if masked else out


def to_csv(rows: Iterable[dict[str, Any]]) -> str:
    """CSV with the stable English keys as the header: UTF-8 with a BOM (Chinese Excel), lists joined with
    ';', every text cell escaped as in a workbook (`adapters.output.sheets.csv_text`)."""
    return csv_text(KEYS, ([_csv_value(k, r.get(k)) for k in KEYS] for r in rows))


def header_labels() -> dict[str, str]:
    return {col.key: col.header for col in COLUMNS}


# ---------------------------------------------------------------------------------------------------- measures in

#: accepted headers for each field (the English key, or the Chinese headers departments use)
MEASURE_HEADERS: dict[str, tuple[str, ...]] = {
    "household_id": ("household_id", "户编号"),
    "measure_id": ("measure_id", "措施编号"),
    "measure_type": ("measure_type", "措施类型", "帮扶措施类型"),
    "addresses": ("addresses", "针对风险", "风险类型"),
    "department": ("department", "责任部门", "实施部门"),
    "responsible": ("responsible", "责任人"),
    "planned_on": ("planned_on", "计划日期", "制定日期"),
    "implemented_on": ("implemented_on", "落实日期", "实施日期"),
    "note": ("note", "备注"),
}
REQUIRED = ("household_id", "measure_id", "measure_type", "addresses", "department", "responsible")
_SPLIT = re.compile(r"[;,，；、\s]+")


@dataclass
class Row:
    """One data row of a department's file and its line (1-based, as a spreadsheet numbers it)."""

    line: int
    values: dict[str, str]


@dataclass
class BadRow:
    line: int
    reason: str
    household_id: str | None = None
    measure_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "household_id": self.household_id, "measure_id": self.measure_id,
                "reason": self.reason}


@dataclass
class MeasureImport:
    """What an import made of a file: commands to apply (with the line each came from) and bad rows."""

    commands: list[tuple[int, c.Command]] = field(default_factory=list)
    bad: list[BadRow] = field(default_factory=list)
    rows: int = 0


class UnreadableFile(ValueError):
    """The file cannot be read at all (format, encoding, missing columns)."""


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _columns(header: list[str]) -> dict[str, int]:
    """Field → column index, from the header row; unknown headers are ignored."""
    by_header = {h: key for key, names in MEASURE_HEADERS.items() for h in names}
    found: dict[str, int] = {}
    for i, name in enumerate(header):
        key = by_header.get(name.strip().lstrip("\ufeff"))
        if key is not None and key not in found:
            found[key] = i
    missing = [k for k in REQUIRED if k not in found]
    if missing:
        wanted = "; ".join(f"{k} ({'/'.join(MEASURE_HEADERS[k][1:])})" for k in missing)
        raise UnreadableFile(f"缺少列: {wanted}")
    return found


#: title rows a sheet may have above its header
TITLE_ROWS = 5


def _rows(table: Iterator[tuple[int, list[Any]]]) -> Iterator[Row]:
    """Data rows after the header: the first of the leading non-empty rows that names the required columns."""
    header: dict[str, int] | None = None
    problem: UnreadableFile | None = None
    seen = 0
    for line, cells in table:
        texts = [_text(v) for v in cells]
        if not any(texts):
            continue
        if header is None:
            seen += 1
            try:
                header = _columns(texts)
            except UnreadableFile as exc:
                problem = problem or exc
                if seen > TITLE_ROWS:
                    raise problem from None
            continue
        yield Row(line, {k: (texts[i] if i < len(texts) else "") for k, i in header.items()})
    if header is None:
        raise problem or UnreadableFile("文件为空: 没有表头行")


def read_measure_rows(path: Path) -> list[Row]:
    """The data rows of a CSV (UTF-8, with or without BOM) or XLSX file (first sheet; the first non-empty
    row is the header)."""
    suffix = path.suffix.lower()
    try:
        if suffix in (".xlsx", ".xlsm"):
            from openpyxl import load_workbook

            wb = load_workbook(path, read_only=True, data_only=True)
            try:
                ws = wb.worksheets[0]
                return list(_rows((n, list(r)) for n, r in enumerate(ws.iter_rows(values_only=True), start=1)))
            finally:
                wb.close()
        with path.open(encoding="utf-8-sig", newline="") as fh:
            return list(_rows(enumerate(csv.reader(fh), start=1)))
    except UnreadableFile:
        raise
    except (OSError, UnicodeDecodeError, csv.Error, ValueError, KeyError) as exc:
        raise UnreadableFile(f"无法读取 {path.name}: {exc}") from None


def _enum(enum: type[MeasureType] | type[RiskType], text: str) -> str:
    for member in enum:
        if text in (member.value, member.label):
            return member.value
    raise ValueError(text)


def _date(text: str, what: str) -> date:
    try:
        return date.fromisoformat(text.replace("/", "-").replace(".", "-")[:10])
    except ValueError:
        raise ValidationFailed(f"{what} {text[:40]!r} 不是有效日期 (YYYY-MM-DD)") from None


def command_id(household_id: str, measure_id: str, step: str) -> str:
    """The idempotency key of a reported measure's step: the same row always gives the same key."""
    return f"measures:{household_id}:{measure_id}:{step}"


def row_commands(row: Row, actor: c.Actor) -> list[c.Command]:
    """The commands one row stands for, or ValidationFailed saying what is wrong with it."""
    v = row.values
    empty = [k for k in REQUIRED if not v.get(k)]
    if empty:
        raise ValidationFailed("缺少必填项: " + ", ".join(empty))
    try:
        measure_type = _enum(MeasureType, v["measure_type"])
    except ValueError:
        raise ValidationFailed(f"未知措施类型 {v['measure_type']!r}; 应为十四类之一 (如 health 健康帮扶)") from None
    risks = []
    for text in _SPLIT.split(v["addresses"]):
        if not text:
            continue
        try:
            risks.append(_enum(RiskType, text))
        except ValueError:
            raise ValidationFailed(f"未知风险类型 {text!r}; 应如 illness 因病、schooling 因学") from None
    implemented = _date(v["implemented_on"], "落实日期") if v.get("implemented_on") else None
    planned = _date(v["planned_on"], "计划日期") if v.get("planned_on") else implemented
    if planned is None:
        raise ValidationFailed("计划日期和落实日期至少填一项")
    if implemented is not None and implemented < planned:
        raise ValidationFailed(f"落实日期 {implemented} 早于计划日期 {planned}")
    hid, mid = v["household_id"], v["measure_id"]
    base = {"household_id": hid, "measure_id": mid, "actor": actor.model_dump(mode="json", exclude_none=True),
            "note": v.get("note") or None, "evidence": [f"measures-import:line {row.line}"]}
    out = []
    try:
        out.append(c.parse_command({**base, "command": "plan_measure", "on": planned.isoformat(),
                                    "command_id": command_id(hid, mid, "plan"), "measure_type": measure_type,
                                    "addresses": risks, "department": v["department"],
                                    "responsible": v["responsible"]}))
        if implemented is not None:
            out.append(c.parse_command({**base, "command": "implement_measure", "on": implemented.isoformat(),
                                        "command_id": command_id(hid, mid, "implement")}))
    except ValidationError as exc:
        raise ValidationFailed(validation_message(exc)) from None
    return out


def measure_commands(rows: Iterable[Row], actor: c.Actor) -> MeasureImport:
    """Turn rows into commands; rows that cannot be read become bad rows (with their line)."""
    result = MeasureImport()
    seen: dict[tuple[str, str], int] = {}
    for row in rows:
        result.rows += 1
        key = (row.values.get("household_id", ""), row.values.get("measure_id", ""))
        if all(key) and key in seen:
            result.bad.append(BadRow(row.line, f"与第 {seen[key]} 行重复 (同一户同一措施编号)", *key))
            continue
        try:
            cmds = row_commands(row, actor)
        except CaseError as err:
            result.bad.append(BadRow(row.line, err.message, key[0] or None, key[1] or None))
            continue
        seen[key] = row.line
        result.commands.extend((row.line, cmd) for cmd in cmds)
    return result
