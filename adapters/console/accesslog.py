"""The read-access log (等保2.0 三级审计, 个人信息保护法): every view of a household, every search, every export
and every replay made in the console — who, when, what, from where — in an append-only table beside the
events, each row's hash covering the previous row's hash, so a changed, deleted or reordered row breaks the
chain. `audit verify` checks it (`check_access_log`); only auditors read it in the console.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from adapters.http.auth import Principal
from casecore.limits import ID_MAX, UNIT_MAX

GENESIS = "0" * 64

ACTIONS = {"view_household": "查看户", "search": "搜索", "export": "导出", "list": "查看名单", "replay": "回放",
           "view_problem": "查看问题"}

metadata = sa.MetaData()
access_log = sa.Table(
    "console_access_log",
    metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=False),
    sa.Column("at", sa.String(40), nullable=False),
    # an account's login and actor id are bounded as an actor's id (adapters.console.accounts)
    sa.Column("login", sa.String(ID_MAX), nullable=False),
    sa.Column("actor_id", sa.String(ID_MAX), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("unit", sa.String(UNIT_MAX), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("target", sa.Text, nullable=False),
    sa.Column("remote", sa.String(64), nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)


def row_hash(prev: str, seq: int, at: str, login: str, actor_id: str, role: str, unit: str, action: str,
             target: str, remote: str) -> str:
    parts = (prev, str(seq), at, login, actor_id, role, unit, action, target, remote)
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


class AccessLog:
    """Appends rows (one at a time, under a lock; a writer in another process is caught by the primary key
    and retried) and reads pages of them."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._lock = threading.Lock()
        metadata.create_all(engine, checkfirst=True)

    def record(self, login: str, principal: Principal, action: str, target: str, remote: str) -> None:
        actor = principal.actor
        with self._lock:
            for _ in range(5):
                try:
                    with self.engine.begin() as conn:
                        last = conn.execute(sa.select(access_log.c.seq, access_log.c.hash)
                                            .order_by(access_log.c.seq.desc()).limit(1)).first()
                        seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
                        at = datetime.now(UTC).isoformat(timespec="microseconds")
                        values = {"seq": seq, "at": at, "login": login, "actor_id": actor.id,
                                  "role": str(actor.role), "unit": actor.unit, "action": action,
                                  "target": target[:2000], "remote": remote[:64]}
                        conn.execute(access_log.insert().values(
                            **values, prev_hash=prev,
                            hash=row_hash(prev, seq, at, login, actor.id, str(actor.role), actor.unit, action,
                                          values["target"], values["remote"])))
                    return
                except IntegrityError:
                    continue
        raise RuntimeError("访问日志写入冲突, 请重试")

    def page(self, offset: int = 0, limit: int = 50, actor_id: str | None = None, personal_data: bool = True
             ) -> tuple[int, list[dict[str, Any]]]:
        """Newest first: the total and one page of rows; without `personal_data`, what was searched for is
        masked (a search is often a person's name or ID number)."""
        where = [] if not actor_id else [access_log.c.actor_id == actor_id]
        with self.engine.connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(access_log).where(*where)).scalar_one()
            rows = conn.execute(sa.select(access_log).where(*where).order_by(access_log.c.seq.desc())
                                .offset(offset).limit(limit)).mappings()
            out = [dict(r, action_label=ACTIONS.get(r["action"], r["action"])) for r in rows]
        if not personal_data:
            for r in out:
                r["target"] = masked_target(r["action"], r["target"])
        return total, out


def masked_target(action: str, target: str) -> str:
    """A logged target as a reader not entitled to personal data sees it: a search's words as a name or an ID
    number is masked; ID numbers inside any other target too."""
    from adapters.integration.feed import mask, mask_id, mask_name

    if action == "search":
        return mask_id(target) if target[:-1].isdigit() and len(target) >= 15 else mask_name(target)
    return str(mask(target, "target"))


@dataclass
class AccessLogReport:
    """What `check_access_log` found: rows checked, and each break in the chain."""

    rows: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_rows(conn: Connection) -> AccessLogReport:
    report = AccessLogReport()
    prev = GENESIS
    expected_seq = 1
    for r in conn.execute(sa.select(access_log).order_by(access_log.c.seq)).mappings():
        report.rows += 1
        if r["seq"] != expected_seq:
            report.problems.append(f"访问日志第 {expected_seq} 条缺失 (下一条为第 {r['seq']} 条): 记录被删除")
            expected_seq = r["seq"]
        if r["prev_hash"] != prev:
            report.problems.append(f"访问日志第 {r['seq']} 条的前一哈希不符: 前面的记录被改动、删除或调序")
        computed = row_hash(r["prev_hash"], r["seq"], r["at"], r["login"], r["actor_id"], r["role"], r["unit"],
                            r["action"], r["target"], r["remote"])
        if computed != r["hash"]:
            report.problems.append(f"访问日志第 {r['seq']} 条的内容与其哈希不符: 记录被改动")
        prev = r["hash"]
        expected_seq += 1
    return report


def check_access_log(engine: Engine) -> AccessLogReport | None:
    """The hook `audit verify` calls: None when the store has no access log (no console ever served on it)."""
    if not sa.inspect(engine).has_table(access_log.name):
        return None
    with engine.connect() as conn:
        return verify_rows(conn)
