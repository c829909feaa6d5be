"""The listings: roster, ledgers, the monthly report and the event feed, each within the caller's reach."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from adapters.http.deps import CallerDep, ServicesDep
from adapters.http.schemas import (
    ErrorResponse,
    EventsPublic,
    FindingsPublic,
    LedgersPublic,
    MonthlyReportPublic,
    RosterPublic,
)

Division = Annotated[str | None, Query(pattern=r"^\d{1,12}$",
                                       description="区划代码前缀 (省2位、市4位、县6位、乡镇9位); 缺省为令牌的全部辖区",
                                       examples=["522631"])]
REFUSALS = {401: {"model": ErrorResponse, "description": "缺少令牌或令牌无效"},
            403: {"model": ErrorResponse, "description": "请求的区划不在令牌的查看范围内"}}

roster = APIRouter(prefix="/roster", tags=["roster 监测对象名单"])
ledgers = APIRouter(prefix="/ledgers", tags=["ledgers 双台账"])
reports = APIRouter(prefix="/reports", tags=["reports 调度通报"])
events = APIRouter(prefix="/events", tags=["events 事件流"])
findings = APIRouter(prefix="/findings", tags=["findings 问题线索"])


Limit = Annotated[int | None, Query(ge=1, le=5000, description="每页最多行数 (缺省: 全部)")]
Cursor = Annotated[str | None, Query(max_length=1000, description="上一页返回的 next_cursor (缺省: 第一页)")]


@roster.get("", summary="监测对象名单 (monitored households)", response_model=RosterPublic, responses=REFUSALS,
            description="监测中和风险消除程序中的户, 含帮扶措施, 按区划和户编号排序。带 limit 时分页: "
            "total 为全部行数, 以 next_cursor 为 cursor 读下一页, 末页 next_cursor 为空。")
async def get_roster(services: ServicesDep, caller: CallerDep, division: Division = None, limit: Limit = None,
                     cursor: Cursor = None) -> Any:
    return await run_in_threadpool(services.roster, caller, division, limit, cursor)


@ledgers.get("", summary="双台账 (problem and rectification ledgers)", response_model=LedgersPublic,
             responses=REFUSALS, description="截至 as_of (缺省为今天) 的问题台账和整改台账, 按区划、发现日期排序。"
             "带 limit 时按问题分页: 本页的问题及其整改记录, total 为全部问题数, 以 next_cursor 为 cursor "
             "读下一页, 末页 next_cursor 为空。overdue=true 只列截至该日超期未销号的问题。")
async def get_ledgers(services: ServicesDep, caller: CallerDep, division: Division = None,
                      as_of: Annotated[date | None, Query(description="截至日期 (业务日期)")] = None,
                      overdue: Annotated[bool, Query(description="只列超期未销号的问题")] = False,
                      limit: Limit = None, cursor: Cursor = None) -> Any:
    return await run_in_threadpool(services.ledgers, caller, as_of or date.today(), division, limit, cursor,
                                   overdue)


@reports.get("/monthly", summary="一月一调度一通报 (monthly dispatch)", response_model=MonthlyReportPublic,
             responses=REFUSALS,
             description="当月各县、乡镇的线索、纳入、风险消除、措施、问题及整改情况, 重点地区, 专项行动节点。")
async def get_monthly(
    services: ServicesDep, caller: CallerDep,
    month: Annotated[str, Query(pattern=r"^[1-9]\d{3}-(0[1-9]|1[0-2])$", description="月份 YYYY-MM",
                                examples=["2023-06"])],
    division: Division = None,
) -> Any:
    return await run_in_threadpool(services.monthly_report, caller, month, division)


@events.get("", summary="事件流 (CloudEvents feed)", response_model=EventsPublic, responses=REFUSALS,
            description="位置 after 之后的事件 (CloudEvents 1.0), 只含令牌辖区内的户和问题; "
            "无权查看个人信息者看到脱敏数据。续读时以 next_after 为 after: 不漏不重。")
async def get_events(
    services: ServicesDep, caller: CallerDep,
    after: Annotated[int, Query(ge=0, le=2**62, description="上次读到的位置 (从头读为 0)")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000, description="本页最多查看的事件数")] = 100,
) -> Any:
    return await run_in_threadpool(services.events, caller, after, limit)


@findings.get("", summary="督查规则发现的问题 (inspector findings)", response_model=FindingsPublic,
              responses=REFUSALS,
              description="截至 as_of (缺省为今天) 运行督查规则: 快进快出、应帮未帮、缺什么补什么、风险消除不实、"
              "纳入超时、补录倒签、整改超期等 (见契约 Findings), 每条含规则中文名、严重程度和证据。"
              "该日期有保存的督查结果 (casecore inspect --store) 时直接读取, computed_at 为其计算时间; "
              "带 limit 时分页 (total, next_cursor)。")
async def get_findings(
    services: ServicesDep, caller: CallerDep, division: Division = None,
    as_of: Annotated[date | None, Query(description="检查基准日 (业务日期)")] = None,
    rule: Annotated[list[str] | None, Query(description="只运行这些规则 (可重复)", examples=["helped_not"])] = None,
    limit: Limit = None, cursor: Cursor = None,
) -> Any:
    return await run_in_threadpool(services.findings, caller, as_of or date.today(), rule, division, limit, cursor)
