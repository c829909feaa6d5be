"""The read-access log: append-only, hash-chained, checked by `audit verify`, on both stores."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from adapters.cli import app as cli
from adapters.console.accesslog import AccessLog, access_log, check_access_log
from adapters.http.auth import Principal
from adapters.readside.readmodels import engine_for, store_of
from casecore.commands import Actor

CADRE = Principal(actor=Actor(id="v-1", name="村干部", role="village", unit="522631101001"),
                  scope="522631101001", personal_data=True)


@pytest.fixture
def engine(app) -> Iterator[sa.Engine]:
    e = engine_for(store_of(app))
    try:
        yield e
    finally:
        e.dispose()


def test_a_store_no_console_served_has_no_access_log_to_check(engine):
    assert check_access_log(engine) is None


def test_views_searches_and_exports_are_recorded_in_order_and_the_chain_verifies(engine):
    log = AccessLog(engine)
    log.record("lisi", CADRE, "view_household", "H1", "10.0.0.7")
    log.record("lisi", CADRE, "search", "张", "10.0.0.7")
    log.record("lisi", CADRE, "export", "名单", "10.0.0.7")
    total, rows = log.page()
    assert total == 3
    assert [(r["seq"], r["action"], r["target"], r["actor_id"], r["remote"]) for r in rows] == [
        (3, "export", "名单", "v-1", "10.0.0.7"), (2, "search", "张", "v-1", "10.0.0.7"),
        (1, "view_household", "H1", "v-1", "10.0.0.7")]
    report = check_access_log(engine)
    assert report is not None and report.ok and report.rows == 3


def test_a_changed_row_breaks_the_chain(engine):
    log = AccessLog(engine)
    for target in ("H1", "H2", "H3"):
        log.record("lisi", CADRE, "view_household", target, "10.0.0.7")
    with engine.begin() as conn:
        conn.execute(access_log.update().where(access_log.c.seq == 2).values(target="H9"))
    report = check_access_log(engine)
    assert report is not None and report.problems == ["访问日志第 2 条的内容与其哈希不符: 记录被改动"]


def test_a_deleted_row_breaks_the_chain(engine):
    log = AccessLog(engine)
    for target in ("H1", "H2", "H3"):
        log.record("lisi", CADRE, "view_household", target, "10.0.0.7")
    with engine.begin() as conn:
        conn.execute(access_log.delete().where(access_log.c.seq == 2))
    problems = check_access_log(engine).problems  # type: ignore[union-attr]
    assert any("第 2 条缺失" in p for p in problems)
    assert any("前一哈希不符" in p for p in problems)


def test_audit_verify_fails_on_a_tampered_access_log(sqlite_app, sqlite_url):
    engine = engine_for(store_of(sqlite_app))
    log = AccessLog(engine)
    log.record("lisi", CADRE, "view_household", "H1", "10.0.0.7")
    runner = CliRunner()
    ok = runner.invoke(cli, ["audit", "verify", "--db", sqlite_url])
    assert ok.exit_code == 0, ok.output
    assert "访问日志 1 条" in ok.output
    with engine.begin() as conn:
        conn.execute(access_log.update().values(remote="1.2.3.4"))
    engine.dispose()
    bad = runner.invoke(cli, ["audit", "verify", "--db", sqlite_url])
    assert bad.exit_code == 1 and "记录被改动" in bad.output
