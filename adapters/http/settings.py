"""The HTTP service's one settings object, read from the environment (or given by `casecore serve`)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, Field


class Settings(BaseModel):
    """Where the event log lives, who may call, and how reads stay fresh."""

    db: str | None = Field(default=None, description="事件库 (CASECORE_DB): 文件路径、sqlite:///… 或 postgresql://…")
    tokens_file: Path | None = Field(default=None, description="令牌文件 (CASECORE_TOKENS): JSON, 令牌 → 办理人")
    accounts_file: Path | None = Field(default=None, description="控制台账号文件 (CASECORE_ACCOUNTS): 有则在 /console/ "
                                       "提供控制台, 见 docs/console.md")
    catch_up_on_read: bool = Field(
        default=True,
        description="读取前先把投影追到事件日志末尾 (read your writes); 由独立投影进程维护时可关闭",
    )
    max_commands: int = Field(default=5000, ge=1, description="一次 POST /commands 最多的命令数")
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024,
                                description="请求体上限 (字节, CASECORE_MAX_BODY_BYTES); 超过即 413, 不读入")
    source: str | None = Field(default=None, description="CloudEvents `source` of this deployment (CASECORE_SOURCE; "
                               "default urn:casecore:<hostname>)")

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Settings from CASECORE_* environment variables; explicit overrides (not None) win."""
        env: dict[str, object] = {}
        if os.environ.get("CASECORE_DB"):
            env["db"] = os.environ["CASECORE_DB"]
        if os.environ.get("CASECORE_TOKENS"):
            env["tokens_file"] = os.environ["CASECORE_TOKENS"]
        if os.environ.get("CASECORE_ACCOUNTS"):
            env["accounts_file"] = os.environ["CASECORE_ACCOUNTS"]
        if os.environ.get("CASECORE_CATCH_UP_ON_READ"):
            env["catch_up_on_read"] = os.environ["CASECORE_CATCH_UP_ON_READ"].lower() not in ("0", "false", "no")
        if os.environ.get("CASECORE_MAX_BODY_BYTES"):
            env["max_body_bytes"] = os.environ["CASECORE_MAX_BODY_BYTES"]
        if os.environ.get("CASECORE_SOURCE"):
            env["source"] = os.environ["CASECORE_SOURCE"]
        env.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(env)
