"""Commands in from the edges (JSON Lines, HTTP bodies, imported rows): one object → its command model, or a
`validation_error` saying in one sentence what is wrong with it. Shared by the CLI and the HTTP service."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ValidationError

from casecore import commands as c
from casecore import limits as lim
from casecore.errors import CaseError, ValidationFailed


def validation_message(exc: ValidationError) -> str:
    """One sentence from pydantic's errors: where and what."""
    parts = []
    for e in exc.errors()[:3]:
        loc = ".".join(str(x) for x in e["loc"][1:] if not str(x).startswith("function-")) or str(e["loc"][0])
        msg = e["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}")
    more = f" (另有 {len(exc.errors()) - 3} 处)" if len(exc.errors()) > 3 else ""
    return "输入有误 — " + "; ".join(parts) + more


def parse_object(data: Any) -> c.Command | CaseError:
    """One decoded JSON value to a command, or a `validation_error`."""
    if not isinstance(data, dict):
        return ValidationFailed("每条命令应为一个 JSON 对象 (one JSON object a command)")
    name = data.get("command")
    if not isinstance(name, str) or name not in c.BY_NAME:
        return ValidationFailed(f"未知命令 {name!r}; 可用命令见 `casecore schema`")
    try:
        return c.parse_command(data)
    except ValidationError as exc:
        return ValidationFailed(validation_message(exc))


def parse_line(text: str) -> c.Command | CaseError:
    """One JSON Lines entry to a command, or a `validation_error` saying what is wrong with it."""
    if len(text) > lim.COMMAND_JSON_MAX:  # refused unread: no field of a command can be this long
        return ValidationFailed(f"这一行有 {len(text)} 个字符, 超过一条命令的上限 {lim.COMMAND_JSON_MAX}; "
                                "请检查备注、说明等字段 (各有长度上限, 见 casecore schema)")
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return ValidationFailed(f"不是有效的 JSON: {exc}")
    if not isinstance(data, dict):
        return ValidationFailed("每行应为一个 JSON 对象 (one JSON object a line)")
    return parse_object(data)
