"""`casecore apply`, `show` and `schema`: the command contract from the command line."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from adapters.cli._common import DbOption, JsonOption, dumps, err_console, open_app, refused
from adapters.integration.intake import parse_line, validation_message  # noqa: F401 - re-exported for callers of the CLI module
from casecore import commands as c
from casecore.errors import ERROR_LABELS, CaseError
from casecore.values import Stage
from casecore.vocabulary import LEAD_STATUS, MEASURE_STATUS, step_label


def read_lines(path: Path) -> Iterator[tuple[int, str]]:
    with path.open("r", encoding="utf-8-sig") as fh:
        for n, line in enumerate(fh, start=1):
            if line.strip():
                yield n, line


def apply(
    file: Annotated[Path, typer.Argument(help="JSON Lines: 一行一条命令; '-' 为标准输入")],
    db: DbOption = None,
    json: JsonOption = False,
    batch: Annotated[int, typer.Option(help="批量路径: 每个事务保存的命令数 (1 = 逐条提交)")] = 500,
) -> None:
    """逐条办理命令文件 (apply a JSON Lines file of commands, each on its own)."""
    if str(file) != "-" and not file.is_file():
        err_console.print(f"[red]无法读取文件 {file}: 文件不存在[/red]")
        raise typer.Exit(2)
    try:
        if str(file) == "-":
            lines = [(n, t) for n, t in enumerate(sys.stdin, start=1) if t.strip()]
        else:
            lines = list(read_lines(file))
    except (OSError, UnicodeDecodeError) as exc:
        err_console.print(f"[red]无法读取文件 {file}: {exc}[/red]")
        raise typer.Exit(2) from None
    from adapters.usecases import apply_lines

    app = open_app(db, create=True)
    counts: Counter[str] = Counter()
    refused: list[tuple[int, c.Command | CaseError, dict]] = []
    rows: list[tuple[int, c.Command | CaseError, dict]] = []
    show_progress = not json and len(lines) > 200
    progress = Progress(TextColumn("[bold]办理命令"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                        console=err_console, disable=not show_progress)
    out = sys.stdout
    with progress:
        task = progress.add_task("apply", total=len(lines))
        for n, cmd, outcome in apply_lines(app, lines, batch):
            result = outcome.as_dict(line=n)
            if json:
                out.write(dumps(result) + "\n")
            else:
                counts["ok" if outcome.ok else result["error"]["code"]] += 1
                (rows if outcome.ok else refused).append((n, cmd, result))
            progress.advance(task)
    if json:
        return
    from adapters.cli._common import Col, Listing, emit, paged, plain, styled
    from casecore.labels import EVENT_LABELS

    def recorded(name: str) -> str:
        return EVENT_LABELS.get(f"household.{name}") or EVENT_LABELS.get(f"problem.{name}") or name

    table = Listing("命令办理结果", [Col("行", "num"), Col("命令"), Col("对象", "id"), Col("结果")])
    listed = sorted(refused + rows, key=lambda r: r[0]) if len(lines) <= 200 else refused
    for n, cmd, result in listed:
        label = c.LABELS.get(cmd.command, cmd.command) if isinstance(cmd, c.Command) else "—"
        target = (getattr(cmd, "household_id", None) or getattr(cmd, "problem_id", "")) if isinstance(
            cmd, c.Command) else ""
        if result["ok"]:
            outcome_text = styled("[green]✓[/green] " + plain("、".join(map(recorded, result["events"]))
                                                              or "重复命令, 未作改动"))
        else:
            err = result["error"]
            outcome_text = styled(f"[red]✗ {ERROR_LABELS.get(err['code'], err['code'])}[/red] {plain(err['message'])}")
        table.add_row(str(n), label, str(target or ""), outcome_text)
    ok = counts.pop("ok", 0)
    summary = f"共 {len(lines)} 条: 办理成功 {ok} 条" + "".join(
        f", {ERROR_LABELS.get(k, k)} {v} 条" for k, v in sorted(counts.items()))
    with paged(len(listed) * 2):
        emit(*([table] if listed else []), summary)


STAGE_STYLE = {Stage.MONITORED: "yellow", Stage.IN_INCLUSION: "cyan", Stage.IN_EXIT: "magenta",
               Stage.RISK_ELIMINATED: "green", Stage.NOT_MONITORED: "white"}


def show(
    household: Annotated[str, typer.Argument(help="户编号")],
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """查看一户的当前状态 (a household's current state)."""
    from casecore.household import public_state

    app = open_app(db, read_only=True)
    try:
        state = public_state(app.get_household(household))
    except CaseError as err:
        raise refused(err, json) from None
    if json:
        print(dumps(state))
        return
    render_household(state)


def _yes_no(value: object) -> str:
    return "是" if value else "否"


def render_household(s: dict) -> None:
    """All of a household, grouped: the case, its cadre, members, assessments, leads, objections, measures."""
    from adapters.cli._common import Col, Listing, emit, paged, person, place, plain, styled
    from casecore.values import (
        Category,
        ExitMode,
        HouseholdType,
        Housing,
        Labour,
        LeadSource,
        MeasureType,
        ObjectionOutcome,
        Procedure,
        RiskType,
    )

    def risks(values: list[str]) -> str:
        return "、".join(RiskType(r).label for r in values)

    stage = Stage(s["stage"])
    names = {m["person_id"]: m["name"] for m in s["members"]}
    out: list = [f"[bold]户 {s['household_id']}[/bold]  {place(s['division_code'])}  "
                 f"[{STAGE_STYLE[stage]}]{stage.label}[/{STAGE_STYLE[stage]}]"]

    facts = [("户类型", HouseholdType(s["household_type"]).label),
             ("地点", f"{place(s['division_code'])} ({s['division_code']})"),
             ("易地搬迁户", f"是, 安置点 {s['resettlement_site']}" if s["relocated"] else "否"),
             ("重点帮扶县", _yes_no(s["key_county"])),
             ("当前阶段", stage.label + (f" (第 {s['cycle']} 轮监测)" if s["cycle"] > 1 else "")),
             ("家庭人口", f"{s['household_size']} 人, "
                          + ("有劳动力" if s["has_labour"] else "[red]整户无劳动力[/red]"))]
    if s["category"]:
        facts.append(("监测对象类型", Category(s["category"]).label))
    if s["included_on"]:
        facts.append(("纳入监测日期", str(s["included_on"])))
    if s["risk_types"]:
        facts.append(("风险类型", risks(s["risk_types"])))
    if s["open_procedure"]:
        step = step_label(s["open_procedure"], s["procedure_step"])
        since = s["procedure_started_on"]
        facts.append(("进行中", f"{Procedure(s['open_procedure']).label}, 环节: {step} (自 {since})"))
    if s["exit_nominated_on"]:
        facts.append(("风险消除提名日期", str(s["exit_nominated_on"])))
    if s["eliminated_on"]:
        mode = ExitMode(s["exit_mode"]).label if s["exit_mode"] else ""
        facts.append(("风险消除日期", f"{s['eliminated_on']} {mode}".strip()))
    if s["rolled_back_on"]:
        facts.append(("风险消除回退日期", str(s["rolled_back_on"])))
    basics = Listing("基本情况", [Col("项目"), Col("内容")], show_header=False)
    for k, v in facts:
        basics.add_row(k, v)
    out.append(basics)

    cadre = s.get("cadre")
    out.append("[bold]帮扶责任人[/bold]: " + (f"{plain(person(cadre.get('name'), cadre.get('unit')))}, "
                                            f"自 {cadre.get('assigned_on') or '—'}" if cadre else "[red]未确定[/red]"))

    members = Listing(f"家庭成员 ({s['household_size']} 人)", [
        Col("身份证号", "id"), Col("姓名"), Col("关系"), Col("出生日期", "date"), Col("劳动能力"), Col("情况"),
        Col("状态")])
    for m in s["members"]:
        notes = "、".join(label for key, label in (("in_school", "在校生"), ("disabled", "残疾"), ("illness", "患病"))
                         if m.get(key))
        status = f"已减员 {m['removed_on']}" if m.get("removed_on") else (
            f"在册 (增员 {m['added_on']})" if m.get("added_on") else "在册")
        members.add_row(m["person_id"], m["name"], m["relation"], str(m["birth_date"]), Labour(m["labour"]).label,
                        notes, status)
    out.append(members)

    if s["income_assessments"]:
        t = Listing("收入核算", [Col("核算日期", "date"), Col("测算期", "date"), Col("家庭纯收入\n(元)", "num"),
                                 Col("合规自付\n支出(元)", "num"), Col("人口", "num"), Col("人均纯收入\n(元)", "num")])
        for a in s["income_assessments"]:
            t.add_row(str(a["on"]), f"{a['period_start']}\n~{a['period_end']}", f"{Decimal(a['net_income']):,}",
                      f"{Decimal(a['rigid_expenditure']):,}", str(a["household_size"]),
                      f"{Decimal(a['per_capita_income']):,}")
        out.append(t)
    if s["guarantee_assessments"]:
        t = Listing("三保障及饮水核查", [Col("核查日期", "date"), Col("住房"), Col("饮水"), Col("失学辍学"),
                                          Col("未参加医保")])
        for g in s["guarantee_assessments"]:
            t.add_row(str(g["on"]), Housing(g["housing"]).label,
                      "安全" if g["drinking_water_safe"] else styled("[red]饮水不安全[/red]"),
                      "、".join(names.get(p, p) for p in g["children_out_of_school"]) or "无",
                      "、".join(names.get(p, p) for p in g["members_without_medical_insurance"]) or "无")
        out.append(t)
    if s["leads"]:
        t = Listing("线索", [Col("线索编号", "id"), Col("日期", "date"), Col("来源"), Col("风险"), Col("说明"),
                             Col("状态")])
        for lead in s["leads"]:
            t.add_row(lead["lead_id"], str(lead["on"]), LeadSource(lead["source"]).label, risks(lead["risk_types"]),
                      lead.get("detail") or "", LEAD_STATUS.get(lead["status"], lead["status"]))
        out.append(t)
    if s["objections"]:
        t = Listing("公示异议", [Col("异议编号", "id"), Col("日期", "date"), Col("内容"), Col("处理结果"),
                                 Col("处理日期", "date")])
        for o in s["objections"]:
            t.add_row(o["objection_id"], str(o["on"]), o.get("detail") or "",
                      ObjectionOutcome(o["outcome"]).label if o.get("outcome") else styled("[yellow]待处理[/yellow]"),
                      str(o.get("resolved_on") or ""))
        out.append(t)
    if s["measures"]:
        t = Listing("帮扶措施", [Col("措施编号", "id"), Col("措施类型"), Col("针对风险"), Col("责任部门\n责任人"),
                                 Col("计划\n落实\n结束", "date"), Col("状态")])
        for m in s["measures"]:
            t.add_row(m["measure_id"], MeasureType(m["measure_type"]).label, risks(m["addresses"]),
                      f"{m.get('department') or ''}\n{m.get('responsible') or ''}",
                      "\n".join(str(m.get(k) or "—") for k in ("planned_on", "implemented_on", "ended_on")),
                      MEASURE_STATUS.get(m["status"], m["status"]))
        out.append(t)
    else:
        out.append("[bold]帮扶措施[/bold]: 无")
    rows = sum(getattr(r, "rows", 1) * 2 for r in out) + 10
    with paged(rows):
        emit(*out)




def schema(
    what: Annotated[str, typer.Argument(help="commands (命令) 或 events (事件)")] = "commands",
) -> None:
    """打印 JSON Schema (the contract's JSON Schema)."""
    if what == "commands":
        print(dumps(c.json_schema()))
        return
    from adapters.integration import event_schemas as schemas

    printer = getattr(schemas, f"{what}_schema", None)
    if printer is None:
        err_console.print(f"[red]未知的 schema {escape(repr(what))}; 可选 commands 或 events[/red]")
        raise typer.Exit(2)
    print(dumps(printer()))


def register(app: typer.Typer) -> None:
    app.command()(apply)
    app.command()(show)
    app.command()(schema)
