"""`casecore roster`: the monitored-household roster (监测对象名单), read from the roster projection after
catching it up. Human output is a table with Chinese headers; `--json` prints JSON Lines (one object a
household, with its `measures`); `--xlsx FILE` writes a workbook (名单 and 帮扶措施 sheets)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from adapters.cli._common import (
    CatchUpOption,
    DbOption,
    JsonOption,
    LimitOption,
    console,
    dumps,
    err_console,
    open_app,
    read_projection,
)
from adapters.places import Places
from adapters.sheets import Column, new_workbook, sheet, subtitle, title, write_table
from casecore.labels import MEASURE_STATUS
from casecore.values import Category, ExitMode, HouseholdType, Housing, Labelled, MeasureType, RiskType, Stage


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
        category_label=_label(Category, r["category"]), risks_label=_risks(r["risk_types"]),
        labour_label=_yes_no(r["has_labour"]), stage_label=_label(Stage, r["stage"]),
        cadre_text="\n".join(p for p in (r["cadre_name"] or "", places.unit(r["cadre_unit"])) if p),
        measures_label=_measures_text(r["measures"]), household_type_label=_label(HouseholdType, r["household_type"]),
        relocated_label=_yes_no(r["relocated"]),
        exit_mode_label=_label(ExitMode, r["exit_mode"]) if r["eliminated_on"] else "",
        housing_label=_label(Housing, r["housing"]), water_label=_yes_no(r["drinking_water_safe"]),
    ) for i, r in enumerate(rows, start=1)]


def measure_view(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    measures = [m for r in rows for m in r["measures"]]
    return [dict(m, no=i, type_label=_label(MeasureType, m["measure_type"]), addresses_label=_risks(m["addresses"]),
                 status_label=MEASURE_STATUS.get(m["status"], m["status"]))
            for i, m in enumerate(measures, start=1)]


def write_xlsx(path: Path, rows: list[dict[str, Any]], as_of: date | None = None, division: str | None = None,
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


def with_heads(conn: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each row with its household head's name (`head_name`)."""
    from projections.monthly_roster import heads_of

    ids = [r["household_id"] for r in rows]
    heads: dict[str, dict[str, Any]] = {}
    for i in range(0, len(ids), 500):
        heads.update(heads_of(conn, ids[i : i + 500]))
    for r in rows:
        r["head_name"] = heads.get(r["household_id"], {}).get("name")
    return rows


def roster(
    division: Annotated[str | None, typer.Option("--division", help="区划代码前缀 (如县 6 位、乡镇 9 位)")] = None,
    all_stages: Annotated[bool, typer.Option("--all", help="列出所有户 (含未纳入、识别中、已消除风险)")] = False,
    json: JsonOption = False,
    xlsx: Annotated[Path | None, typer.Option("--xlsx", help="另存为 Excel 工作簿 (.xlsx)")] = None,
    limit: LimitOption = None,
    db: DbOption = None,
    catch_up: CatchUpOption = True,
) -> None:
    """监测对象名单 (the monitored-household roster: 监测中 and 风险消除程序中 unless --all)."""
    from adapters.readmodels import read_models
    from projections.registry import by_name
    from projections.roster import monitored_roster

    if division is not None and not division.isdigit():
        err_console.print(f"[red]区划代码前缀应为数字: {escape(repr(division))}[/red]")
        raise typer.Exit(2)

    def read(conn: Any) -> tuple[list[dict[str, Any]], Places | None]:
        rows = monitored_roster(conn, division, all_stages=all_stages)
        if xlsx is None:
            return rows, None
        return with_heads(conn, rows), Places.load(conn)

    if not catch_up:
        rows, places = read_projection(db, "名单", lambda conn, _: read(conn))
    else:
        app = open_app(db)
        try:
            rm = read_models(app, [by_name("roster")])
        except ValueError as exc:
            err_console.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from None
        with rm:
            rm.catch_up("roster")
            with rm.engine.connect() as conn:
                rows, places = read(conn)
    if xlsx is not None and places is not None:
        try:
            write_xlsx(xlsx, rows, date.today(), division, places)
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
    from adapters.cli._common import Col, Listing, emit, limit_note, limited, paged, plain, styled
    from adapters.places import place_name, place_path

    shown, total = limited(rows, limit)
    counties = sorted({r["county_code"] for r in rows if r["county_code"]})
    where = plain("、".join(place_path(c) for c in counties))
    table = Listing(f"{where}监测对象名单" + (" (全部户)" if all_stages else ""), [
        Col("户编号\n纳入日期", "id"), Col("乡镇\n村"), Col("监测对象类型\n状态"), Col("风险类型"), Col("人口", "num"),
        Col("人均纯收入\n(元)", "num"), Col("帮扶责任人"), Col("帮扶措施")])
    for r in shown:
        risks = styled((plain(_risks(r["risk_types"])) + ("" if r["has_labour"] else "\n[red]无劳动力[/red]")).strip())
        table.add_row(
            f"{r['household_id']}\n{r['included_on'] or ''}",
            f"{place_name(r['township_code'])}\n{place_name(r['division_code'])}",
            f"{_label(Category, r['category'])}\n{_label(Stage, r['stage'])}".strip(), risks,
            str(r["household_size"]), "" if r["per_capita_income"] is None else f"{r['per_capita_income']:,}",
            r["cadre_name"] or styled("[red]未指定[/red]"), _measures_text(r["measures"]) or styled("[red]无[/red]"),
        )
    implemented = sum(1 for r in rows if r["measures_implemented"])
    with paged(len(shown) * 3):
        emit(table, f"共 {len(rows)} 户; 已落实帮扶措施 {implemented} 户",
             *filter(None, [limit_note(len(shown), total)]))


def register(app: typer.Typer) -> None:
    app.command()(roster)
