"""`casecore apply`, `show` and `schema`: the command contract from the command line."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from adapters.cli._common import DbOption, JsonOption, console, dumps, err_console, open_app
from adapters.intake import parse_line, validation_message  # noqa: F401 - re-exported for callers of the CLI module
from casecore import commands as c
from casecore.errors import ERROR_LABELS, CaseError
from casecore.values import Stage


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
    app = open_app(db, create=True)
    parsed = [parse_line(t) for _, t in lines]
    counts: Counter[str] = Counter()
    refused: list[tuple[int, c.Command | CaseError, dict]] = []
    rows: list[tuple[int, c.Command | CaseError, dict]] = []
    show_progress = not json and len(lines) > 200
    progress = Progress(TextColumn("[bold]办理命令"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                        console=err_console, disable=not show_progress)
    out = sys.stdout
    with progress:
        task = progress.add_task("apply", total=len(lines))
        outcomes = app.handle_many(parsed, batch_size=max(1, batch))
        for (n, _), cmd, outcome in zip(lines, parsed, outcomes):
            result = outcome.as_dict(line=n)
            if json:
                out.write(dumps(result) + "\n")
            else:
                counts["ok" if outcome.ok else result["error"]["code"]] += 1
                (rows if outcome.ok else refused).append((n, cmd, result))
            progress.advance(task)
    if json:
        return
    table = Table(title="命令办理结果", show_lines=False)
    for col in ("行", "命令", "对象", "结果"):
        table.add_column(col)
    listed = sorted(refused + rows, key=lambda r: r[0]) if len(lines) <= 200 else refused
    for n, cmd, result in listed:
        label = c.LABELS.get(cmd.command, cmd.command) if isinstance(cmd, c.Command) else "—"
        target = (getattr(cmd, "household_id", None) or getattr(cmd, "problem_id", "")) if isinstance(
            cmd, c.Command) else ""
        if result["ok"]:
            outcome_text = "[green]✓[/green] " + (", ".join(result["events"]) or "重复命令, 未作改动")
        else:
            err = result["error"]
            outcome_text = f"[red]✗ {ERROR_LABELS.get(err['code'], err['code'])}[/red] {err['message']}"
        table.add_row(str(n), label, str(target or ""), outcome_text)
    if listed:
        console.print(table)
    ok = counts.pop("ok", 0)
    summary = f"共 {len(lines)} 条: 办理成功 {ok} 条" + "".join(
        f", {ERROR_LABELS.get(k, k)} ({k}) {v} 条" for k, v in sorted(counts.items()))
    console.print(summary)


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
        if json:
            print(dumps({"ok": False, "error": err.as_dict()}))
        else:
            err_console.print(f"[red]{err.message}[/red]")
        raise typer.Exit(1) from None
    if json:
        print(dumps(state))
        return
    render_household(state)


LEAD_STATUS = {"open": "待核实", "meets": "核实符合", "not_meets": "核实不符合", "included": "已纳入监测",
               "attached": "已记入监测档案"}


def _step_label(procedure: str, step: str) -> str:
    """The Chinese label of a procedure's step, from the procedure's table module."""
    import importlib

    labels = getattr(importlib.import_module(f"workflows.{procedure}"), "LABELS", {})
    return next((label for state, label in labels.items() if getattr(state, "value", state) == step), step)


def render_household(s: dict) -> None:
    from casecore.values import Category, HouseholdType, Labour, LeadSource, Procedure, RiskType

    stage = Stage(s["stage"])
    console.print(f"[bold]户 {s['household_id']}[/bold]  区划 {s['division_code']}  "
                  f"{HouseholdType(s['household_type']).label}  "
                  f"[{STAGE_STYLE[stage]}]{stage.label}[/{STAGE_STYLE[stage]}]")
    if s["category"]:
        console.print(f"监测对象类型: {Category(s['category']).label}   纳入日期: {s['included_on'] or '—'}")
    if s["risk_types"]:
        console.print("风险类型: " + "、".join(RiskType(r).label for r in s["risk_types"]))
    if s["open_procedure"]:
        console.print(f"进行中: {Procedure(s['open_procedure']).label} — 环节 "
                      f"{_step_label(s['open_procedure'], s['procedure_step'])}")
    members = Table(title=f"家庭成员 ({s['household_size']} 人)")
    for col in ("身份证号", "姓名", "关系", "出生日期", "劳动能力", "状态"):
        members.add_column(col)
    for m in s["members"]:
        status = f"已减员 {m['removed_on']}" if m.get("removed_on") else "在册"
        members.add_row(m["person_id"], m["name"], m["relation"], str(m["birth_date"]), Labour(m["labour"]).label,
                        status)
    console.print(members)
    if s["income_assessments"]:
        t = Table(title="收入核算")
        for col in ("核算日期", "测算期", "家庭纯收入", "合规自付支出", "人口", "人均纯收入"):
            t.add_column(col)
        for a in s["income_assessments"]:
            t.add_row(str(a["on"]), f"{a['period_start']}~{a['period_end']}", str(a["net_income"]),
                      str(a["rigid_expenditure"]), str(a["household_size"]), str(a["per_capita_income"]))
        console.print(t)
    if s["leads"]:
        t = Table(title="线索")
        for col in ("线索", "日期", "来源", "风险", "状态"):
            t.add_column(col)
        for lead in s["leads"]:
            t.add_row(lead["lead_id"], str(lead["on"]), LeadSource(lead["source"]).label,
                      "、".join(RiskType(r).label for r in lead["risk_types"]),
                      LEAD_STATUS.get(lead["status"], lead["status"]))
        console.print(t)


def schema(
    what: Annotated[str, typer.Argument(help="commands (命令) 或 events (事件)")] = "commands",
) -> None:
    """打印 JSON Schema (the contract's JSON Schema)."""
    if what == "commands":
        print(dumps(c.json_schema()))
        return
    from adapters import schemas

    printer = getattr(schemas, f"{what}_schema", None)
    if printer is None:
        err_console.print(f"[red]未知的 schema {what!r}; 可选 commands 或 events[/red]")
        raise typer.Exit(2)
    print(dumps(printer()))


def register(app: typer.Typer) -> None:
    app.command()(apply)
    app.command()(show)
    app.command()(schema)
