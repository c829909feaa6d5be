"""`casecore serve`: the HTTP service (docs/http.md) under uvicorn."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated

import typer

from adapters.cli._common import DbOption, configure_logging, err_console


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
    tls_cert: Annotated[Path | None, typer.Option("--tls-cert", envvar="CASECORE_TLS_CERT",
                                                  help="TLS 证书文件 (PEM); 与 --tls-key 一起启用 HTTPS")] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", envvar="CASECORE_TLS_KEY",
                                                 help="TLS 私钥文件 (PEM)")] = None,
) -> None:
    """启动 HTTP 服务 (serve the HTTP API: commands in, roster, findings, ledgers, reports, events out)."""
    import uvicorn

    from adapters.console.accounts import AccountError
    from adapters.http import Settings, TokenFileError, create_app
    from adapters.readside.snapshot import inspection_jobs

    if (tls_cert is None) != (tls_key is None):
        err_console.print("[red]--tls-cert 与 --tls-key 须同时给出[/red]")
        raise typer.Exit(2)
    configure_logging(default="info")  # one line a request, with the caller's actor
    if tokens is None and not os.environ.get("CASECORE_TOKENS") and accounts is None:
        # with an accounts file the console is served alone (create_app: the API then refuses every request)
        err_console.print(no_tokens_hint(), soft_wrap=True)
        raise typer.Exit(2)
    try:
        inspection_jobs()   # how many connections /findings shares a run among: a wrong value stops the start
        app = create_app(Settings.from_env(db=db, tokens_file=tokens, accounts_file=accounts,
                                           catch_up_on_read=catch_up_on_read))
    except (TokenFileError, AccountError) as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    except Exception as exc:  # a store that cannot be opened is the operator's to fix, not a traceback
        err_console.print(f"[red]无法启动服务: {exc}[/red]")
        raise typer.Exit(2) from None
    tls = tls_cert is not None
    scheme = "https" if tls else "http"
    shown = f"[{host}]" if ":" in host else host
    tokens_file = tokens or os.environ.get("CASECORE_TOKENS")
    reach = f"令牌文件 {tokens_file}" if tokens_file else "未指定令牌文件 (接口拒绝一切请求, 只有控制台可用)"
    err_console.print(f"casecore 服务监听 {scheme}://{shown}:{port} (接口文档 {scheme}://{shown}:{port}/docs), "
                      f"{reach}; 按 Ctrl-C 停止", highlight=False, soft_wrap=True)
    if not tls and not is_loopback(host):
        err_console.print(f"[yellow]警告: 监听地址 {host} 不限于本机, 且未启用 TLS: "
                          "令牌和个人信息将以明文在网络上传输; "
                          "请用 --tls-cert/--tls-key 启用 HTTPS, 或只在本机监听并由 HTTPS 反向代理转发[/yellow]",
                          highlight=False, soft_wrap=True)
    if accounts is not None:
        err_console.print(f"控制台: {scheme}://{shown}:{port}/console/  (账号文件 {accounts})", highlight=False,
                          soft_wrap=True)
    uvicorn.run(app, host=host, port=port, log_level="warning",
                ssl_certfile=str(tls_cert) if tls_cert else None, ssl_keyfile=str(tls_key) if tls_key else None)


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def no_tokens_hint() -> str:
    """What to do without a tokens file: use the one the demo writes, or write one (docs/http.md)."""
    from adapters.cli.demo import DEFAULT_DEMO_DB, DEFAULT_OUTPUT

    demo_tokens = Path(DEFAULT_OUTPUT) / "tokens.json"
    demo_db = Path(DEFAULT_DEMO_DB)
    lines = ["[red]未指定令牌文件: 每个请求须带令牌, 服务不能没有令牌文件就启动。[/red]"]
    if demo_tokens.is_file():
        lines.append(f"演示县的令牌文件已在 {demo_tokens} (每个角色一个令牌), 用它启动:")
    else:
        lines.append(f"先运行 casecore demo: 它为演示县写出 {demo_tokens} (每个角色一个令牌), 然后:")
    lines.append(f"  casecore serve --tokens {demo_tokens} --db {demo_db}")
    lines.append("正式部署请按 docs/http.md 写令牌文件, 用 --tokens FILE 或 CASECORE_TOKENS 指定。")
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    app.command()(serve)
