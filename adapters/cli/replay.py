"""`casecore replay`: one household's (or problem's) whole history from the event log, with both clocks."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Annotated, Any

import typer

from adapters.cli._common import DbOption, JsonOption, console, dumps, open_app, refused
from casecore.errors import CaseError
from casecore.values import Role


def parse_timestamp(text: str) -> datetime:
    """ISO date or date-time; without an offset it is UTC (recorded times are stored in UTC)."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{text!r} 不是 ISO 时间, 例如 2023-03-05T10:00:00+08:00 或 2023-03-05") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} 不是 ISO 日期, 例如 2023-03-05") from None


def replay(
    target: Annotated[str, typer.Argument(help="户编号 (或 --problem 时的问题编号)")],
    problem: Annotated[bool, typer.Option("--problem", help="回放问题整改记录而不是户")] = False,
    as_of: Annotated[str | None, typer.Option("--as-of", help="业务日期: 显示该日的案情 (on ≤ 日期的事件)")] = None,
    recorded_before: Annotated[str | None, typer.Option(
        "--recorded-before", help="记录时间: 显示系统在该时刻之前所知的案情 (无时区时按 UTC)")] = None,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """回放一户 (或一个问题) 的全部历史 (replay a case's whole history)."""
    from projections.queries.replay import replay as run_replay
    from projections.queries.replay import stream_of

    day = parse_day(as_of) if as_of else None
    moment = parse_timestamp(recorded_before) if recorded_before else None
    app = open_app(db, read_only=True)
    try:
        result = run_replay(app, stream_of(target, problem), as_of=day, recorded_before=moment)
    except CaseError as err:
        raise refused(err, json) from None
    if json:
        print(dumps(asdict(result)))
        return
    from adapters.cli._common import paged

    with paged(len(result.entries) * 4 + len(result.excluded)):
        render(result)


def _after_text(after: dict[str, Any]) -> str:
    if "stage_label" in after:
        step = f" · {after['step_label']}" if after.get("step_label") else ""
        return after["stage_label"] + step
    return after.get("status_label", "")


def _payload_text(aggregate: str, event: str, payload: dict[str, Any]) -> str:
    from adapters.cli._common import place
    from casecore.labels import payload_items

    if payload.get("division_code"):
        payload = dict(payload, division_code=f"{place(payload['division_code'])} ({payload['division_code']})")
    return "; ".join(f"{label}: {text}" for label, text in payload_items(aggregate, event, payload))


def render(r: Any) -> None:
    kind = "问题" if r.aggregate == "problem" else "户"
    cuts = []
    if r.as_of:
        cuts.append(f"业务日期截至 {r.as_of}")
    if r.recorded_before:
        cuts.append(f"记录时间早于 {r.recorded_before.isoformat()}")
    title = f"[bold]{kind} {r.stream.split('/', 1)[-1]} 全部历史[/bold]"
    console.print(title + (f" ({'; '.join(cuts)})" if cuts else ""))
    for e in r.entries:
        actor = e.actor.get("name") or e.actor.get("id", "")
        role = e.actor.get("role", "")
        role_text = Role(role).label if role in Role._value2member_map_ else role
        late = f" [yellow](补录: 晚 {e.lag_days} 天记录)[/yellow]" if e.lag_days > 1 else ""
        console.print(f"[bold]v{e.version}[/bold] 位置 {e.position or '—'}  业务日期 {e.on}  "
                      f"记录于 {e.recorded_at.strftime('%Y-%m-%d %H:%M:%S')} UTC{late}", soft_wrap=True)
        console.print(f"    [cyan]{e.label}[/cyan]  经办人 {actor} ({role_text})", soft_wrap=True)
        content = _payload_text(r.aggregate, e.type, e.payload)
        if content:
            console.print(f"    内容: {content}", soft_wrap=True, markup=False)
        after = _after_text(e.after) if e.applied else f"[red]无法折叠: {e.problem}[/red]"
        console.print(f"    之后: {after}", soft_wrap=True)
    if r.excluded:
        console.print(f"[bold]未计入的事件 ({len(r.excluded)} 条)[/bold]")
        for x in r.excluded:
            console.print(f"  v{x.version} {x.label}  业务日期 {x.on}  记录于 "
                          f"{x.recorded_at.strftime('%Y-%m-%d %H:%M:%S')} UTC — {x.reason}", soft_wrap=True)
    if r.state is None:
        console.print(f"截至该时点, 此{kind}尚未建档/登记")
    else:
        console.print(f"此时状态: {_after_text(r.after)}  (共计入 {len(r.entries)} 条事件)")


def register(app: typer.Typer) -> None:
    app.command()(replay)
