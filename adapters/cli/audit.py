"""`casecore audit verify` and `casecore audit checkpoint`: tamper evidence for auditors."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.markup import escape

from adapters.cli._common import DbOption, JsonOption, console, dumps, err_console, open_app

audit_app = typer.Typer(help="审计: 核验事件库未被篡改、生成检查点 (tamper evidence).", no_args_is_help=True)


def _recorder(app):
    from adapters.store.hashchain import HashedRecorder

    recorder = app.recorder
    if not isinstance(recorder, HashedRecorder):
        err_console.print("[red]此事件库未启用哈希链, 无法核验[/red]")
        raise typer.Exit(2)
    return recorder


ChainKeyFileOption = Annotated[str | None, typer.Option(
    "--chain-key-file",
    help="哈希链密钥文件 (核验须提供用过的全部密钥; 也可用 CASECORE_CHAIN_KEY_FILE 或 CASECORE_CHAIN_KEY)")]


def _read_json(path: Path) -> Any:
    return orjson.loads(path.read_bytes())


def _signed_checkpoints(folder: Path, public_key: Path | None) -> tuple[list[tuple[str, dict]], list[Any], int]:
    """Every checkpoint file in `folder` whose signature holds, and a finding for each that does not."""
    from adapters.store.audit import CheckpointError, SigningKeyError, Tampering, read_checkpoint, signature_problem

    if public_key is None:
        err_console.print("[red]--checkpoints 须同时给出审计方的公钥 --public-key FILE[/red]")
        raise typer.Exit(2)
    try:
        pem = public_key.read_bytes()
        files = sorted(folder.glob("*.json"))
    except OSError as exc:
        err_console.print(f"[red]无法读取 {exc.filename}: {exc.strerror}[/red]")
        raise typer.Exit(2) from None
    if not folder.is_dir():
        err_console.print(f"[red]检查点目录 {folder} 不存在[/red]")
        raise typer.Exit(2)
    good: list[tuple[str, dict]] = []
    bad: list[Any] = []
    for f in files:
        try:
            document = read_checkpoint(_read_json(f))
            problem = signature_problem(document, pem)
        except SigningKeyError as exc:
            err_console.print(f"[red]公钥 {public_key}: {exc}[/red]")
            raise typer.Exit(2) from None
        except (OSError, orjson.JSONDecodeError, CheckpointError) as exc:
            problem = f"无法读取: {exc}"
        if problem is None:
            good.append((f.name, document))
        else:
            bad.append(Tampering("checkpoint_forged", f"检查点 {f.name}: {problem}", day=f.name))
    return good, bad, len(files)


@audit_app.command()
def verify(
    from_checkpoint: Annotated[Path | None, typer.Option(
        "--from-checkpoint", help="审计方保存在系统外的检查点文件 (casecore audit checkpoint 生成)")] = None,
    checkpoints: Annotated[Path | None, typer.Option(
        "--checkpoints", help="已签名检查点所在目录: 逐个验签, 并对照每一天的历史")] = None,
    public_key: Annotated[Path | None, typer.Option(
        "--public-key", help="审计方的 Ed25519 公钥 (casecore audit keygen --signing-key 生成)")] = None,
    chain_key_file: ChainKeyFileOption = None,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """从存储的原始记录重算全部哈希, 列出被篡改、删除、调序或插入的每一条事件; 无异常时退出码为 0."""
    from adapters.store.audit import (
        CheckpointError,
        audit,
        backdated_before,
        compare_checkpoint,
        read_checkpoint,
    )

    checkpoint = None
    if from_checkpoint is not None:
        try:
            checkpoint = read_checkpoint(_read_json(from_checkpoint))
        except (OSError, orjson.JSONDecodeError, CheckpointError) as exc:
            err_console.print(f"[red]无法读取检查点 {from_checkpoint}: {exc}[/red]")
            raise typer.Exit(2) from None
    signed: list[tuple[str, dict]] = []
    files = 0
    forged: list[Any] = []
    if checkpoints is not None:
        signed, forged, files = _signed_checkpoints(checkpoints, public_key)
    app = open_app(db, read_only=True, chain_key_file=chain_key_file)
    recorder = _recorder(app)
    keys = recorder.chain_keys
    try:
        report = audit(recorder, checkpoint["through_position"] if checkpoint else None, keys,
                       backdated_before(checkpoint) if checkpoint else None)
        if checkpoint is not None:
            report.findings.extend(compare_checkpoint(report, checkpoint))
        report.findings.extend(forged)
        seen = set(report.findings)
        for name, document in signed:
            against = audit(recorder, document["through_position"], keys, backdated_before(document))
            for f in [*against.findings, *compare_checkpoint(against, document)]:
                if f.kind.startswith("day_") or f.kind == "digest_changed":
                    f = replace(f, detail=f"已签名检查点 {name}: {f.detail}")
                if f not in seen:
                    seen.add(f)
                    report.findings.append(f)
        snapshots = _check_snapshots(app, quiet=json)
        if snapshots is not None:
            report.findings.extend(snapshots.findings)
        access = check_console_access_log(app)
        if json:
            out = report.as_dict()
            if snapshots is not None:
                out["snapshots"] = {"streams": snapshots.streams, "checked": snapshots.snapshots}
                if snapshots.unchecked:
                    out["snapshots"] |= {"unchecked": snapshots.unchecked, "reason": snapshots.unchecked_reason}
            if checkpoint is not None:
                out["checkpoint"] = {"through_position": checkpoint["through_position"], "digest": checkpoint["digest"]}
            if checkpoints is not None:
                out["checkpoints"] = {"files": files, "signed": len(signed)}
            out["chain"] = {"keys": [k.id for k in keys.keys] if keys is not None else []}
            if access is not None:
                out["access_log"] = {"rows": access.rows, "ok": access.ok, "problems": access.problems}
                out["ok"] = out["ok"] and access.ok
            print(dumps(out))
        else:
            scope = f"; 对照检查点 (位置 ≤ {checkpoint['through_position']})" if checkpoint else ""
            if checkpoints is not None:
                scope += f"; 对照 {len(signed)} 个已签名检查点 (共 {files} 个文件)"
            checked = f", {snapshots.snapshots} 个快照" if snapshots is not None else ""
            if snapshots is not None and snapshots.unchecked:
                err_console.print(f"[yellow]{snapshots.unchecked} 个快照未核验: {snapshots.unchecked_reason}[/yellow]")
            if keys is None:
                err_console.print("[yellow]未提供链密钥: 只核验了无密钥的哈希链, 它证明不了写入者是系统本身 "
                                  "(见 docs/audit-and-feed.md)[/yellow]")
            if report.ok:
                console.print(f"[green]✓ 已核验 {report.events} 条事件 ({report.streams} 个流){checked}{scope}: "
                              "未发现篡改[/green]")
            else:
                from adapters.cli._common import Col, Listing, emit, styled

                table = Listing(f"发现 {len(report.findings)} 处异常", [Col("类型"), Col("流 / 日期", "id"),
                                                                      Col("版本", "num"), Col("位置", "num"),
                                                                      Col("说明")])
                for f in report.findings:
                    table.add_row(styled(f"[red]{f.label}[/red]"), f.stream or f.day or "", str(f.version or ""),
                                  str(f.position or ""), f.detail)
                emit(table)
                console.print(f"已核验 {report.events} 条事件 ({report.streams} 个流){checked}{scope}")
            if access is not None:
                if access.ok:
                    console.print(f"[green]✓ 已核验控制台访问日志 {access.rows} 条: 哈希链完整[/green]")
                else:
                    for problem in access.problems:
                        console.print(f"[red]{problem}[/red]")
        if not report.ok or (access is not None and not access.ok):
            raise typer.Exit(1)
    finally:
        app.close()



def check_console_access_log(app):
    """The console's read-access log, checked like the events (None when no console ever served this store),
    on an engine that cannot write: the auditor's copy stays as it was."""
    from adapters.console.accesslog import check_access_log
    from adapters.readside.readmodels import store_of
    from adapters.store.storage import read_only_engine

    engine = read_only_engine(store_of(app))
    try:
        return check_access_log(engine)
    finally:
        engine.dispose()


def _check_snapshots(app, quiet: bool):
    """Replay every snapshotted stream and compare (None when snapshots are off)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from adapters.store import snapshot_store as snapshots

    if app.snapshots is None:
        return None
    with Progress(TextColumn("[bold]核验快照"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=err_console, transient=True, disable=quiet) as bar:
        task = bar.add_task("", total=None)
        return snapshots.verify(app, lambda done, total: bar.update(task, completed=done, total=total))


@audit_app.command()
def checkpoint(
    out: Annotated[Path | None, typer.Option("--out", help="写入文件 (默认输出到标准输出)")] = None,
    signing_key: Annotated[Path | None, typer.Option(
        "--signing-key", help="审计方的 Ed25519 私钥: 对检查点签名 (casecore audit keygen --signing-key 生成)")] = None,
    chain_key_file: ChainKeyFileOption = None,
    db: DbOption = None,
) -> None:
    """生成检查点: 每日摘要和总摘要, 由审计方保存在系统之外, 日后用 verify --from-checkpoint 对照."""
    from adapters.integration.feed import deployment_source
    from adapters.store.audit import SigningKeyError, audit, checkpoint_document, sign_checkpoint

    private = None
    if signing_key is not None:
        try:
            private = signing_key.read_bytes()
        except OSError as exc:
            err_console.print(f"[red]无法读取签名私钥 {signing_key}: {exc.strerror}[/red]")
            raise typer.Exit(2) from None
    app = open_app(db, read_only=True, chain_key_file=chain_key_file)
    recorder = _recorder(app)
    report = audit(recorder, keys=recorder.chain_keys)
    try:
        document = checkpoint_document(report, deployment_source())
        if private is not None:
            try:
                document = sign_checkpoint(document, private)
            except SigningKeyError as exc:
                err_console.print(f"[red]签名私钥 {signing_key}: {exc}[/red]")
                raise typer.Exit(2) from None
        text = orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n"
        if out is None:
            sys.stdout.write(text)
        else:
            out.write_text(text, encoding="utf-8")
        err_console.print(f"检查点: {document['events']} 条事件, {len(document['days'])} 天, 至位置 "
                          f"{document['through_position']}, 总摘要 {document['digest']}"
                          + (", 已签名" if private is not None else "") + (f" → {out}" if out else ""))
        if not report.ok:
            err_console.print(f"[red]注意: 事件库当前有 {len(report.findings)} 处异常 (见 casecore audit verify); "
                              "检查点已标注 verified=false[/red]")
            raise typer.Exit(1)
    finally:
        app.close()


@audit_app.command()
def keygen(
    chain_keys: Annotated[Path | None, typer.Option(
        "--chain-keys", help="链密钥文件: 追加一把新的 HMAC 密钥 (文件不存在则新建, 权限 0600)")] = None,
    key_id: Annotated[str | None, typer.Option("--id", help="新链密钥的 id (默认 k<生效日期>)")] = None,
    since: Annotated[str | None, typer.Option("--from", help="新链密钥的生效日期 YYYY-MM-DD (默认今天, UTC)")] = None,
    signing_key: Annotated[Path | None, typer.Option(
        "--signing-key", help="审计方签名密钥: 写出 Ed25519 私钥 FILE 和公钥 FILE.pub")] = None,
) -> None:
    """生成密钥: 哈希链的 HMAC 密钥 (轮换时追加) 或审计方的检查点签名密钥对."""
    from datetime import UTC, date, datetime

    from adapters.store.audit import new_signing_key
    from adapters.store.hashchain import KEYS_FORMAT, ChainKeyError, ChainKeys, check_key_id, new_secret

    if chain_keys is None and signing_key is None:
        err_console.print("[red]请给出 --chain-keys FILE 或 --signing-key FILE (或两者)[/red]")
        raise typer.Exit(2)
    if chain_keys is not None:
        try:
            day = date.fromisoformat(since) if since else datetime.now(UTC).date()
        except ValueError:
            err_console.print(f"[red]--from “{escape(since)}” 不是日期 (应为 YYYY-MM-DD)[/red]")
            raise typer.Exit(2) from None
        entries: list[dict[str, str]] = []
        if chain_keys.exists():
            try:
                ChainKeys.from_file(chain_keys)
            except ChainKeyError as exc:
                err_console.print(f"[red]{exc}[/red]")
                raise typer.Exit(2) from None
            entries = orjson.loads(chain_keys.read_bytes())["keys"]
        new_id = key_id or f"k{day:%Y%m%d}"
        try:  # written as given, an id the keys file cannot hold would stop every process that loads it
            check_key_id(new_id, "--id")
        except ChainKeyError as exc:
            err_console.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from None
        if any(e["id"] == new_id for e in entries):
            err_console.print(f"[red]{chain_keys} 已有 id 为 {new_id} 的密钥; 用 --id 另取一个[/red]")
            raise typer.Exit(2)
        entries.append({"id": new_id, "from": day.isoformat(), "key": new_secret()})
        text = orjson.dumps({"format": KEYS_FORMAT, "keys": entries}, option=orjson.OPT_INDENT_2)
        _write_private(chain_keys, text, replace_file=True)
        err_console.print(f"链密钥 {new_id} 自 {day} 起生效 → {chain_keys} (共 {len(entries)} 把; 旧密钥留作核验)")
    if signing_key is not None:
        public = signing_key.with_name(signing_key.name + ".pub")
        if signing_key.exists() or public.exists():
            err_console.print(f"[red]{signing_key} 或 {public} 已存在; 不覆盖已有的签名密钥[/red]")
            raise typer.Exit(2)
        private_pem, public_pem = new_signing_key()
        _write_private(signing_key, private_pem, replace_file=False)
        public.write_bytes(public_pem)
        err_console.print(f"签名私钥 → {signing_key} (审计方保管, 勿放入系统); 公钥 → {public}")


def _write_private(path: Path, data: bytes, replace_file: bool) -> None:
    """Write a secret readable by its owner only (written beside, then moved over the old file)."""
    import os

    temp = path.with_name(path.name + ".tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    if not replace_file and path.exists():  # pragma: no cover - checked by the caller
        temp.unlink()
        raise FileExistsError(path)
    os.replace(temp, path)


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
