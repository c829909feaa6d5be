"""`casecore serve`: the HTTP service (docs/http.md) under uvicorn."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from adapters.cli._common import DbOption, configure_logging, console, err_console


def serve(
    host: Annotated[str, typer.Option(help="监听地址")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="监听端口")] = 8000,
    db: DbOption = None,
    tokens: Annotated[Path | None, typer.Option("--tokens", envvar="CASECORE_TOKENS",
                                                help="令牌文件 (JSON: 令牌 → 办理人), 见 docs/http.md")] = None,
    accounts: Annotated[Path | None, typer.Option("--accounts", envvar="CASECORE_ACCOUNTS",
                                                  help="控制台账号文件 (casecore accounts add 生成); "
                                                  "有则在 /console/ 提供控制台, 见 docs/console.md")] = None,
    catch_up_on_read: Annotated[bool, typer.Option(
        "--catch-up-on-read/--no-catch-up-on-read",
        help="读取前先追平投影; 由独立投影进程 (casecore projections run) 维护时可关闭")] = True,
) -> None:
    """启动 HTTP 服务 (serve the HTTP API: commands in, roster, findings, ledgers, reports, events out)."""
    import uvicorn

    from adapters.console.accounts import AccountError
    from adapters.http import Settings, TokenFileError, create_app

    configure_logging()
    try:
        app = create_app(Settings.from_env(db=db, tokens_file=tokens, accounts_file=accounts,
                                           catch_up_on_read=catch_up_on_read))
    except (TokenFileError, AccountError) as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    except Exception as exc:  # a store that cannot be opened is the operator's to fix, not a traceback
        err_console.print(f"[red]无法启动服务: {exc}[/red]")
        raise typer.Exit(2) from None
    if accounts is not None:
        console.print(f"控制台: http://{host}:{port}/console/  (账号文件 {accounts})")
    uvicorn.run(app, host=host, port=port, log_level="warning")


def register(app: typer.Typer) -> None:
    app.command()(serve)
