"""Listings the console needs, for integrators too: households of every stage (paged, filtered, xlsx),
search, one problem and its history, division names."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from adapters.http.deps import CallerDep, ServicesDep
from adapters.http.schemas import ErrorResponse
from adapters.usecases import Filters, households_workbook

REFUSALS = {401: {"model": ErrorResponse, "description": "缺少令牌或令牌无效"},
            403: {"model": ErrorResponse, "description": "请求的区划不在令牌的查看范围内"}}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

households = APIRouter(prefix="/households", tags=["households 户"])
search = APIRouter(prefix="/search", tags=["households 户"])
problems = APIRouter(prefix="/problems", tags=["ledgers 双台账"])
divisions = APIRouter(prefix="/divisions", tags=["households 户"])


@households.get("", summary="农户名单, 各阶段 (households of every stage, paged)", responses=REFUSALS,
                description="令牌辖区内各阶段的户, 按区划和户编号排序, 可按区划、阶段、类别、风险类型筛选; "
                "offset/limit 分页, total 为符合条件的总户数; format=xlsx 下载工作簿 (全部符合条件的户)。")
async def list_households(
    services: ServicesDep, caller: CallerDep,
    division: Annotated[str, Query(pattern=r"^\d{0,12}$", description="区划代码前缀")] = "",
    stage: Annotated[str, Query(description="阶段: not_monitored, in_inclusion, monitored, in_exit, "
                                            "risk_eliminated")] = "",
    category: Annotated[str, Query(description="监测对象类别")] = "",
    risk_type: Annotated[str, Query(description="风险类型")] = "",
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    format: Annotated[str, Query(pattern=r"^(json|xlsx)$", description="json (缺省) 或 xlsx")] = "json",
) -> Any:
    filters = Filters(division=division, stage=stage, category=category, risk_type=risk_type)
    if format == "xlsx":
        _, rows = await run_in_threadpool(services.households_page, caller, filters, 0, 10_000_000)
        return Response(households_workbook(rows), media_type=XLSX,
                        headers={"Content-Disposition": "attachment; filename=households.xlsx"})
    total, rows = await run_in_threadpool(services.households_page, caller, filters, offset, limit)
    return {"total": total, "offset": offset, "limit": limit, "rows": rows}


@search.get("", summary="搜索户 (search households)", responses=REFUSALS,
            description="按户编号 (前缀)、成员姓名或身份证号、村代码搜索令牌辖区内的户; 姓名和身份证号"
                        "只有可查看个人信息的令牌按前缀匹配, 其他令牌须给出完整的姓名或号码 "
                        "(前缀会逐位泄露脱敏的部分)。")
async def search_households(
    services: ServicesDep, caller: CallerDep,
    q: Annotated[str, Query(min_length=1, max_length=64, description="户编号、姓名、身份证号或村代码")],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Any:
    rows = await run_in_threadpool(services.search, caller, q, limit)
    return {"q": q, "count": len(rows), "rows": rows}


@problems.get("/{problem_id}", summary="一个问题及其办理记录 (one problem and its history)",
              responses={404: {"model": ErrorResponse, "description": "问题不存在或不在令牌的查看范围内"},
                         401: REFUSALS[401]},
              description="问题台账中的一行 (截至 as_of), 其整改台账记录和全部事件。")
async def get_problem(
    services: ServicesDep, caller: CallerDep,
    problem_id: Annotated[str, Path(min_length=1, max_length=64)],
    as_of: Annotated[date | None, Query(description="截至日期 (业务日期)")] = None,
) -> Any:
    return await run_in_threadpool(services.problem, caller, problem_id, as_of or date.today())


@divisions.get("/{code}", summary="区划名称 (division name)", responses={401: REFUSALS[401]},
               description="区划代码的名称和完整路径 (省、市、县来自 GB/T 2260; 未知的乡村保留代码)。")
async def get_division(code: Annotated[str, Path(pattern=r"^\d{2,12}$")], caller: CallerDep) -> Any:
    from adapters.readside.places import place_name, place_path

    return {"code": code, "name": place_name(code), "path": place_path(code)}
