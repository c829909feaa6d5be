"""`casecore console`: the console (docs/console.md) on the demo store, in one command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from adapters.cli.demo import DEFAULT_DEMO_DB, DEFAULT_OUTPUT


def console(
    db: Annotated[str, typer.Option("--db", envvar="CASECORE_DB", help="事件库 (缺省为演示库)")] = DEFAULT_DEMO_DB,
    accounts: Annotated[Path, typer.Option("--accounts", envvar="CASECORE_ACCOUNTS",
                                           help="账号文件 (缺省为演示账号)")] = Path(DEFAULT_OUTPUT) / "accounts.json",
    host: Annotated[str, typer.Option(help="监听地址")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="监听端口")] = 8000,
) -> None:
    """启动控制台并打印其地址 (缺省: ./casecore demo 生成的演示库和演示账号)."""
    from adapters.cli._common import err_console
    from adapters.cli.serve import serve

    if not accounts.exists():
        err_console.print(f"[red]没有账号文件 {accounts}; 请先运行 ./dev demo (它会写出演示账号), "
                          "或用 --accounts 指定账号文件[/red]")
        raise typer.Exit(2)
    serve(host=host, port=port, db=db, tokens=None, accounts=accounts, catch_up_on_read=True)


def register(app: typer.Typer) -> None:
    app.command()(console)
