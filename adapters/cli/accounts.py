"""`casecore accounts add|list|remove|unlock|require-totp`: the console's accounts file (docs/console.md)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from adapters.cli._common import JsonOption, console, dumps, err_console

accounts_app = typer.Typer(help="控制台账号: 添加、列出、删除、解锁 (the console's accounts file).",
                           no_args_is_help=True)

FileOption = Annotated[Path | None, typer.Option("--file", envvar="CASECORE_ACCOUNTS",
                                                 help="账号文件 (JSON; 缺省为 CASECORE_ACCOUNTS)")]


def _book(file: Path | None):
    from adapters.console.accounts import AccountBook

    if file is None:
        err_console.print("[red]未指定账号文件; 请用 --file FILE 或 CASECORE_ACCOUNTS 指定[/red]")
        raise typer.Exit(2)
    return AccountBook(file)


@accounts_app.command()
def add(
    login: Annotated[str, typer.Argument(help="登录名")],
    name: Annotated[str, typer.Option("--name", help="姓名")],
    role: Annotated[str, typer.Option(
        "--role", help="角色: village, township, county, department, inspector, auditor")],
    unit: Annotated[str, typer.Option("--unit", help="单位: 区划代码 (12位) 或部门名称")],
    scope: Annotated[str | None, typer.Option("--scope", help="可查看的区划代码前缀 (只能收窄单位辖区)")] = None,
    personal_data: Annotated[bool | None, typer.Option(
        "--personal-data/--no-personal-data", help="可查看个人信息 (缺省: 村、乡、县干部和审计可以)")] = None,
    totp: Annotated[bool, typer.Option("--totp", help="启用动态口令 (TOTP); 打印密钥和 otpauth 地址")] = False,
    actor_id: Annotated[str | None, typer.Option("--id", help="办理人编号 (缺省为登录名)")] = None,
    file: FileOption = None,
) -> None:
    """添加或替换账号; 密码从标准输入读取 (第一行), 只保存其 argon2 哈希."""
    from adapters.console.accounts import AccountError

    book = _book(file)
    password = sys.stdin.readline().rstrip("\r\n")
    try:
        account = book.add(login, password, name=name, role=role, unit=unit, scope=scope,
                           personal_data=personal_data, totp=totp, actor_id=actor_id)
    except AccountError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    console.print(f"已保存账号 {escape(login)} ({escape(account.name)}, {account.role.label}, "
                  f"{escape(account.unit)}) 到 {escape(str(book.path))}")
    if account.totp_secret:
        import pyotp

        uri = pyotp.TOTP(account.totp_secret).provisioning_uri(name=login, issuer_name="casecore")
        console.print(f"动态口令密钥: {account.totp_secret}\n验证器地址: {uri}")


@accounts_app.command("list")
def list_accounts(file: FileOption = None, json: JsonOption = False) -> None:
    """列出账号 (不含密码哈希和口令密钥)."""
    from adapters.console.accounts import AccountError

    book = _book(file)
    try:
        accounts = book.accounts()
        required = book.totp_required_roles()
    except AccountError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    rows = [{"login": login, "id": a.id, "name": a.name, "role": a.role.value, "unit": a.unit, "scope": a.scope,
             "personal_data": a.personal_data, "totp": a.totp_secret is not None, "locked_until": a.locked_until}
            for login, a in sorted(accounts.items())]
    if json:
        for r in rows:
            print(dumps(r))
        return
    from adapters.cli._common import Col, Listing, emit
    from casecore.values import Role

    must = "、".join(Role(r).label for r in sorted(required)) or "无"
    table = Listing(f"账号 ({len(rows)}) · 须动态口令的角色: {must}",
                    [Col("登录名", "id"), Col("办理人", "id"), Col("姓名"), Col("角色"), Col("单位"), Col("范围", "id"),
                     Col("个人信息"), Col("动态口令"), Col("锁定至", "date")])
    for r in rows:
        table.add_row(r["login"], r["id"], r["name"], Role(r["role"]).label, r["unit"], r["scope"] or "",
                      "" if r["personal_data"] is None else ("是" if r["personal_data"] else "否"),
                      "是" if r["totp"] else "", str(r["locked_until"] or ""))
    emit(table)


@accounts_app.command()
def remove(login: Annotated[str, typer.Argument(help="登录名")], file: FileOption = None) -> None:
    """删除账号."""
    _change(file, lambda book: book.remove(login), f"已删除账号 {escape(login)}")


@accounts_app.command()
def unlock(login: Annotated[str, typer.Argument(help="登录名")], file: FileOption = None) -> None:
    """解除因密码或动态口令连续输错而锁定的账号."""
    _change(file, lambda book: book.unlock(login), f"已解锁账号 {escape(login)}")


def _change(file: Path | None, change: Callable[[Any], None], done: str) -> None:
    """One change to the accounts file; a refusal (no such login, a file that cannot be read) is its sentence
    and exit status 2."""
    from adapters.console.accounts import AccountError

    try:
        change(_book(file))
    except AccountError as exc:
        err_console.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(2) from None
    console.print(done)


@accounts_app.command("require-totp")
def require_totp(roles: Annotated[list[str], typer.Argument(help="须启用动态口令的角色, 如 county auditor")],
                 file: FileOption = None) -> None:
    """规定哪些角色的账号必须使用动态口令登录."""
    try:
        _book(file).require_totp_for(roles)
    except ValueError as exc:
        err_console.print(f"[red]角色无效: {exc}[/red]")
        raise typer.Exit(2) from None
    console.print(f"须动态口令的角色: {', '.join(roles)}")


def register(app: typer.Typer) -> None:
    app.add_typer(accounts_app, name="accounts")
