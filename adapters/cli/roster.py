"""`casecore roster`: the monitored-household roster (监测对象名单), read from the roster projection after
catching it up. Human output is a table with Chinese headers; `--json` prints JSON Lines (one object a
household, with its `measures`); `--xlsx FILE` writes a workbook (名单 and 帮扶措施 sheets)."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer

from adapters.cli._common import DbOption, JsonOption, LimitOption, console, dumps, err_console, open_app
from casecore.values import Category, ExitMode, HouseholdType, Housing, Labelled, MeasureType, RiskType, Stage

MEASURE_STATUS = {"planned": "计划", "implemented": "已落实", "ended": "已结束"}


def _label(enum: type[Labelled], value: str | None) -> str:
    if value is None:
        return ""
    try:
        return enum(value).label
    except ValueError:
        return value


def _risks(values: list[str]) -> str:
    return "、".join(_label(RiskType, r) for r in values)


def _measures_text(measures: list[dict[str, Any]]) -> str:
    return "、".join(
        f"{_label(MeasureType, m['measure_type']) or m['measure_id']}({MEASURE_STATUS.get(m['status'], m['status'])})"
        for m in measures
    )


def _yes_no(value: bool | None) -> str:
    return "" if value is None else ("是" if value else "否")


#: the workbook's roster columns: header and value from a row (dates stay dates, money stays Decimal)
Column = tuple[str, Callable[[dict[str, Any]], Any]]
ROSTER_COLUMNS: list[Column] = [
    ("户编号", lambda r: r["household_id"]),
    ("区划代码", lambda r: r["division_code"]),
    ("县代码", lambda r: r["county_code"]),
    ("乡镇代码", lambda r: r["township_code"]),
    ("户类型", lambda r: _label(HouseholdType, r["household_type"])),
    ("易地搬迁户", lambda r: _yes_no(r["relocated"])),
    ("安置点", lambda r: r["resettlement_site"] or ""),
    ("状态", lambda r: _label(Stage, r["stage"])),
    ("监测对象类型", lambda r: _label(Category, r["category"])),
    ("风险类型", lambda r: _risks(r["risk_types"])),
    ("家庭人口", lambda r: r["household_size"]),
    ("有劳动力", lambda r: _yes_no(r["has_labour"])),
    ("帮扶责任人", lambda r: r["cadre_name"] or ""),
    ("责任人单位", lambda r: r["cadre_unit"] or ""),
    ("纳入监测日期", lambda r: r["included_on"]),
    ("风险消除日期", lambda r: r["eliminated_on"]),
    ("消除方式", lambda r: _label(ExitMode, r["exit_mode"]) if r["eliminated_on"] else ""),
    ("人均纯收入(元)", lambda r: r["per_capita_income"]),
    ("收入核算日期", lambda r: r["income_assessed_on"]),
    ("住房", lambda r: _label(Housing, r["housing"])),
    ("饮水安全", lambda r: _yes_no(r["drinking_water_safe"])),
    ("措施数", lambda r: r["measures_planned"]),
    ("已落实措施数", lambda r: r["measures_implemented"]),
    ("帮扶措施", lambda r: _measures_text(r["measures"])),
]

MEASURE_COLUMNS: list[Column] = [
    ("户编号", lambda m: m["household_id"]),
    ("措施编号", lambda m: m["measure_id"]),
    ("措施类型", lambda m: _label(MeasureType, m["measure_type"])),
    ("针对风险", lambda m: _risks(m["addresses"])),
    ("责任部门", lambda m: m["department"] or ""),
    ("责任人", lambda m: m["responsible"] or ""),
    ("计划日期", lambda m: m["planned_on"]),
    ("落实日期", lambda m: m["implemented_on"]),
    ("结束日期", lambda m: m["ended_on"]),
    ("状态", lambda m: MEASURE_STATUS.get(m["status"], m["status"])),
]


def _display_width(value: Any) -> int:
    if isinstance(value, date):
        return 10
    text = str(value)
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def write_xlsx(path: Path, rows: list[dict[str, Any]]) -> None:
    """The roster and its measures as a workbook: Chinese headers, frozen header row, fitting widths, dates
    as dates and income as a number."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    sheets = [("监测对象名单", ROSTER_COLUMNS, rows),
              ("帮扶措施", MEASURE_COLUMNS, [m for r in rows for m in r["measures"]])]
    for n, (title, columns, records) in enumerate(sheets):
        ws = wb.active if n == 0 else wb.create_sheet()
        ws.title = title
        ws.append([h for h, _ in columns])
        for cell in ws[1]:
            cell.font = Font(bold=True)
        widths = [_display_width(h) for h, _ in columns]
        for record in records:
            values = [get(record) for _, get in columns]
            ws.append(values)
            for i, v in enumerate(values):
                if v is not None:
                    widths[i] = max(widths[i], _display_width(v))
        for i, (_, _) in enumerate(columns, start=1):
            ws.column_dimensions[get_column_letter(i)].width = min(60, widths[i - 1] + 2)
        for row in ws.iter_rows(min_row=2):
            for cell in row:
                if isinstance(cell.value, date):
                    cell.number_format = "yyyy-mm-dd"
                elif isinstance(cell.value, Decimal):
                    cell.number_format = "#,##0.00"
        ws.freeze_panes = "A2"
        ws.auto_filter.ref = ws.dimensions
    wb.save(path)


def roster(
    division: Annotated[str | None, typer.Option("--division", help="区划代码前缀 (如县 6 位、乡镇 9 位)")] = None,
    all_stages: Annotated[bool, typer.Option("--all", help="列出所有户 (含未纳入、识别中、已消除风险)")] = False,
    json: JsonOption = False,
    xlsx: Annotated[Path | None, typer.Option("--xlsx", help="另存为 Excel 工作簿 (.xlsx)")] = None,
    limit: LimitOption = None,
    db: DbOption = None,
) -> None:
    """监测对象名单 (the monitored-household roster: 监测中 and 风险消除程序中 unless --all)."""
    from adapters.readmodels import read_models
    from projections.registry import by_name
    from projections.roster import monitored_roster

    if division is not None and not division.isdigit():
        err_console.print(f"[red]区划代码前缀应为数字: {division!r}[/red]")
        raise typer.Exit(2)
    app = open_app(db)
    try:
        rm = read_models(app, [by_name("roster")])
    except ValueError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    with rm:
        rm.catch_up("roster")
        with rm.engine.connect() as conn:
            rows = monitored_roster(conn, division, all_stages=all_stages)
    if xlsx is not None:
        try:
            write_xlsx(xlsx, rows)
        except OSError as exc:
            err_console.print(f"[red]无法写入 {xlsx}: {exc}[/red]")
            raise typer.Exit(2) from None
        if not json:
            console.print(f"已写入 {xlsx}: {len(rows)} 户")
    if json:
        for r in rows:
            print(dumps(r))
        return
    if xlsx is not None:
        return
    render(rows, all_stages, limit)


def render(rows: list[dict[str, Any]], all_stages: bool, limit: int | None = None) -> None:
    from adapters.cli._common import Col, Listing, emit, limit_note, limited, paged
    from adapters.places import place_name, place_path

    shown, total = limited(rows, limit)
    counties = sorted({r["county_code"] for r in rows if r["county_code"]})
    where = "、".join(place_path(c) for c in counties)
    table = Listing(f"{where}监测对象名单" + (" (全部户)" if all_stages else ""), [
        Col("户编号\n纳入日期", "id"), Col("乡镇\n村"), Col("监测对象类型\n状态"), Col("风险类型"), Col("人口", "num"),
        Col("人均纯收入\n(元)", "num"), Col("帮扶责任人"), Col("帮扶措施")])
    for r in shown:
        risks = _risks(r["risk_types"]) + ("" if r["has_labour"] else "\n[red]无劳动力[/red]")
        table.add_row(
            f"{r['household_id']}\n{r['included_on'] or ''}",
            f"{place_name(r['township_code'])}\n{place_name(r['division_code'])}",
            f"{_label(Category, r['category'])}\n{_label(Stage, r['stage'])}".strip(), risks.strip(),
            str(r["household_size"]), "" if r["per_capita_income"] is None else f"{r['per_capita_income']:,}",
            r["cadre_name"] or "[red]未指定[/red]", _measures_text(r["measures"]) or "[red]无[/red]",
        )
    implemented = sum(1 for r in rows if r["measures_implemented"])
    with paged(len(shown) * 3):
        emit(table, f"共 {len(rows)} 户; 已落实帮扶措施 {implemented} 户",
             *filter(None, [limit_note(len(shown), total)]))


def register(app: typer.Typer) -> None:
    app.command()(roster)
