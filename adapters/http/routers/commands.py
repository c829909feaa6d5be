"""POST /commands: one contract command or a list of them, decided in order, each on its own."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool

from adapters.http.deps import CallerDep, ServicesDep
from adapters.http.schemas import CommandResultPublic, ErrorResponse

router = APIRouter(tags=["commands 命令"])

EXAMPLE_COMMAND = {
    "command": "close_publicity",
    "on": "2023-03-10",
    "actor": {"id": "v-cadre-1", "name": "村干部甲", "role": "village", "unit": "522631101001"},
    "household_id": "H1",
    "command_id": "H1-close-publicity-1",
}

REQUEST_BODY = {
    "required": True,
    "description": (
        "一条命令 (JSON 对象) 或命令数组, 字段见契约 (`casecore schema commands`)。`actor` 必须与令牌所属办理人一致; "
        "省略 `actor` 时以令牌所属办理人办理。One command object, or an array of them."
    ),
    "content": {
        "application/json": {
            "schema": {"oneOf": [{"$ref": "#/components/schemas/Command"},
                                 {"type": "array", "items": {"$ref": "#/components/schemas/Command"}}]},
            "examples": {
                "one": {"summary": "一条命令 (公示结束)", "value": EXAMPLE_COMMAND},
                "many": {"summary": "多条命令, 逐条办理", "value": [EXAMPLE_COMMAND]},
            },
        }
    },
}


@router.post(
    "/commands",
    summary="办理命令 (apply commands)",
    description=(
        "逐条办理命令, 每条独立成败 (与 `casecore apply --json` 相同的结果)。"
        "一条命令返回一个结果对象, 命令数组返回结果数组。"
        "被拒绝的命令不改变任何数据: 结果中 `ok` 为 false, `error.code` 为契约错误码 (validation_error, not_found, "
        "invalid_transition, policy_violation, not_authorised, conflict)。"
        "办理人与令牌不符、超出令牌辖区、违反四眼原则, "
        "都以该条命令的 not_authorised 结果返回 (HTTP 200), 其余命令照常办理。"
    ),
    response_model=CommandResultPublic | list[CommandResultPublic],
    response_model_exclude_none=True,
    responses={
        401: {"model": ErrorResponse, "description": "缺少令牌或令牌无效"},
        413: {"model": ErrorResponse, "description": "一次提交的命令过多"},
        422: {"model": ErrorResponse, "description": "请求体不是 JSON, 或既不是对象也不是数组"},
    },
    openapi_extra={"requestBody": REQUEST_BODY},
)
async def post_commands(request: Request, services: ServicesDep, caller: CallerDep) -> Any:
    raw = await request.body()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"请求体不是有效的 JSON: {exc}") from None
    if not isinstance(body, (dict, list)):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "请求体应为一条命令 (JSON 对象) 或命令数组")
    items = body if isinstance(body, list) else [body]
    if len(items) > services.settings.max_commands:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE,
                            f"一次最多提交 {services.settings.max_commands} 条命令, 本次 {len(items)} 条; 请分批提交")
    results = await run_in_threadpool(services.submit, caller, items)
    return results if isinstance(body, list) else results[0]
