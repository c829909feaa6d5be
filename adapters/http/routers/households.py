"""GET /households/{id} and its timeline."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.concurrency import run_in_threadpool

from adapters.http.deps import CallerDep, ServicesDep
from adapters.http.schemas import ErrorResponse, HouseholdPublic, TimelinePublic

router = APIRouter(prefix="/households", tags=["households 户"])

HouseholdId = Annotated[str, Path(min_length=1, max_length=64, description="户编号", examples=["H1"])]
NOT_FOUND = {404: {"model": ErrorResponse, "description": "户不存在, 或不在令牌的查看范围内 (二者不作区分)"},
             401: {"model": ErrorResponse, "description": "缺少令牌或令牌无效"}}


@router.get(
    "/{household_id}",
    summary="一户的当前状态 (household state)",
    description="契约中的户状态 (与 `casecore show --json` 相同) 及其明细。"
    "无权查看个人信息的调用方看到脱敏后的身份证号和姓名。",
    response_model=HouseholdPublic,
    responses=NOT_FOUND,
)
async def get_household(household_id: HouseholdId, services: ServicesDep, caller: CallerDep) -> Any:
    return await run_in_threadpool(services.household, caller, household_id)


@router.get(
    "/{household_id}/timeline",
    summary="一户的办理记录 (timeline)",
    description="本户的全部事件, 按事件流顺序: 业务日期 (on)、系统记录时间 (recorded_at)、办理人、事件中文名和内容。"
    "读自办理记录投影 (timeline), 不重放事件日志。",
    response_model=TimelinePublic,
    responses=NOT_FOUND,
)
async def get_timeline(household_id: HouseholdId, services: ServicesDep, caller: CallerDep) -> Any:
    events = await run_in_threadpool(services.timeline, caller, household_id)
    return {"household_id": household_id, "events": events}
