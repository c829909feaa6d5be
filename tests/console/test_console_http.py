"""The console over HTTP (no browser): login, cookies, CSRF, reach, masking and the access log."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from adapters.http import Settings, create_app
from casecore.labels import MEASURE_STATUS
from casecore.values import MeasureType
from projections.roster import roster
from tests.console.support import PASSWORD, VILLAGE, copy_store, csrf_of, write_accounts

BASE = "http://testserver"


@pytest.fixture(scope="module")
def console_app(demo_db, tmp_path_factory) -> Iterator[TestClient]:
    where = tmp_path_factory.mktemp("http")
    app = create_app(Settings(db=str(copy_store(demo_db, where)), accounts_file=write_accounts(where / "a.json")))
    with TestClient(app, base_url=BASE) as client:
        yield client


def log_in(client: TestClient, user: str) -> None:
    client.cookies.clear()
    page = client.get("/console/login")
    r = client.post("/console/login", data={"username": user, "password": PASSWORD,
                                            "csrf_token": csrf_of(page.text)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/"


def household(client: TestClient, inside: bool) -> str:
    services = client.app.state.services  # type: ignore[attr-defined]
    services.fresh("roster")
    where = roster.c.division_code == VILLAGE if inside else roster.c.division_code != VILLAGE
    with services.connect() as conn:
        return str(conn.execute(sa.select(roster.c.household_id).where(where).limit(1)).scalar_one())


def test_the_login_form_has_the_contracts_fields_and_a_good_login_sets_a_safe_cookie(console_app):
    console_app.cookies.clear()
    page = console_app.get("/console/login")
    assert 'name="username"' in page.text and 'name="password"' in page.text and 'name="csrf_token"' in page.text
    r = console_app.post("/console/login", data={"username": "village", "password": PASSWORD,
                                                 "csrf_token": csrf_of(page.text)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/"
    cookie = next(v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("casecore_console="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # plain HTTP here; over TLS the cookie is Secure


def test_a_login_posted_without_the_forms_token_is_refused(console_app):
    console_app.cookies.clear()
    r = console_app.post("/console/login", data={"username": "village", "password": PASSWORD})
    assert r.status_code == 403 and "安全令牌" in r.text


def test_a_wrong_password_shows_the_sentence_on_the_login_page(console_app):
    console_app.cookies.clear()
    page = console_app.get("/console/login")
    r = console_app.post("/console/login", data={"username": "county", "password": "not-the-password",
                                                 "csrf_token": csrf_of(page.text)})
    assert r.status_code == 401 and "登录名或密码不正确" in r.text


def test_every_page_sends_a_visitor_without_a_session_to_the_login_page(console_app):
    console_app.cookies.clear()
    for path in ("/console/", "/console/inbox", "/console/search?q=x", "/console/households", "/console/ledgers",
                 "/console/findings", "/console/audit", "/console/monthly", "/console/households/H1"):
        r = console_app.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/console/login?next="), path


def test_a_village_cadre_sees_only_the_village_and_a_household_outside_is_not_found(console_app):
    log_in(console_app, "village")
    outside = household(console_app, inside=False)
    r = console_app.get(f"/console/households/{outside}")
    assert r.status_code == 404 and "不在您的查看范围内" in r.text
    listing = console_app.get("/console/households")
    listed = set(re.findall(r'href="/console/households/([^"/?]+)"', listing.text))
    with console_app.app.state.services.connect() as conn:  # type: ignore[attr-defined]
        codes = set(conn.execute(sa.select(roster.c.division_code).where(roster.c.household_id.in_(listed))).scalars())
    assert listed and codes == {VILLAGE}
    found = console_app.get(f"/console/search?q={outside}")
    assert "找到 0 户" in found.text and f"/console/households/{outside}" not in found.text


def test_a_step_posted_without_its_csrf_token_changes_nothing(console_app):
    log_in(console_app, "village")
    hid = household(console_app, inside=True)
    before = console_app.get(f"/console/households/{hid}").text.count("<tr>")
    r = console_app.post(f"/console/households/{hid}/commands", data={"command": "record_lead", "source":
                                                                      "self_declaration", "lead_id": "L-x"})
    assert r.status_code == 403 and "安全令牌" in r.text
    assert console_app.get(f"/console/households/{hid}").text.count("<tr>") == before


def test_only_auditors_open_the_audit_page_and_its_access_log(console_app):
    log_in(console_app, "county")
    r = console_app.get("/console/audit")
    assert r.status_code == 403 and "仅供审计使用" in r.text
    log_in(console_app, "auditor")
    assert console_app.get("/console/audit").status_code == 200


def test_an_xlsx_download_is_a_workbook_and_is_recorded_as_an_export(console_app):
    log_in(console_app, "county")
    r = console_app.get("/console/households?stage=monitored&format=xlsx")
    assert r.status_code == 200 and r.content[:2] == b"PK"
    log_in(console_app, "auditor")
    page = console_app.get("/console/audit")
    assert "导出" in page.text and "名单" in page.text


def test_logging_out_ends_the_session_at_once(console_app):
    log_in(console_app, "village")
    page = console_app.get("/console/")
    token = csrf_of(page.text)
    assert console_app.post("/console/logout", data={"csrf_token": token}, follow_redirects=False).status_code == 303
    assert console_app.get("/console/", follow_redirects=False).status_code == 303


def test_the_static_assets_come_from_the_package(console_app):
    for name in ("htmx.min.js", "echarts.min.js", "console.css"):
        assert console_app.get(f"/console/static/{name}").status_code == 200
    page_dir = Path(__file__).resolve().parents[2] / "adapters" / "console" / "templates"
    for template in page_dir.glob("*.html"):
        assert "http://" not in template.read_text() and "https://" not in template.read_text(), template


def test_a_place_name_with_markup_cannot_close_the_monthly_pages_chart_script(console_app):
    from adapters.readside import places

    hostile = "新坡镇</script><script>alert(1)</script>"
    kept = places.place_name(VILLAGE[:9])
    places.learn({VILLAGE[:9]: hostile})  # as an imported division table could name it
    try:
        log_in(console_app, "county")
        page = console_app.get("/console/monthly?month=2023-06")
    finally:
        places.learn({VILLAGE[:9]: kept})
    assert page.status_code == 200
    assert "<script>alert(1)" not in page.text
    assert "\\u003c/script\\u003e\\u003cscript\\u003ealert(1)" in page.text  # the name reaches the chart as data


def test_the_findings_page_names_each_fact_of_the_evidence_in_chinese_as_the_terminal_does(console_app):
    from projections.evidence import evidence_sentences

    log_in(console_app, "inspector")
    page = console_app.get("/console/findings?as_of=2026-12-31")
    assert page.status_code == 200
    services = console_app.app.state.services  # type: ignore[attr-defined]
    found = services.findings(services_principal(console_app, "inspector"), date(2026, 12, 31), None, None)
    with_measures = [f for f in found["findings"] if f["evidence"].get("measures")]
    assert with_measures, "the demo county should have a finding whose evidence lists measures"
    for f in with_measures[:20]:
        assert html.escape("; ".join(evidence_sentences(f["evidence"])), quote=False) in page.text
    assert "{'" not in page.text and "'measure_type'" not in page.text


def services_principal(client: TestClient, login: str) -> Any:
    return client.app.state.console.accounts.login(login, PASSWORD).principal  # type: ignore[attr-defined]


def test_a_households_measures_show_their_type_and_status_in_chinese(console_app):
    from projections.roster import roster_measures

    services = console_app.app.state.services  # type: ignore[attr-defined]
    with services.connect() as conn:
        hid, kind, status = conn.execute(sa.select(roster_measures.c.household_id, roster_measures.c.measure_type,
                                                   roster_measures.c.status).limit(1)).one()
    log_in(console_app, "county")
    page = console_app.get(f"/console/households/{hid}")
    measures = page.text[page.text.index("<h2>帮扶措施</h2>"):page.text.index("<h2>办理记录")]
    assert f"<td>{MeasureType(kind).label}</td>" in measures and f"<td>{kind}</td>" not in measures
    assert f"<td>{status}</td>" not in measures
    assert f"<td>{MEASURE_STATUS[status]}</td>" in measures


def test_a_refused_problem_sends_the_reader_back_only_within_the_console(console_app):
    log_in(console_app, "county")
    token = csrf_of(console_app.get("/console/ledgers").text)
    for back, expected in (("https://elsewhere.example/", "/console/ledgers"),
                           ("//elsewhere.example/console/", "/console/ledgers"),
                           ("/console/findings?rule=helped_not", "/console/findings?rule=helped_not")):
        r = console_app.post("/console/problems", data={"csrf_token": token, "kind": "no-such-kind",
                                                        "division_code": VILLAGE, "back": back},
                             follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == expected, back


def test_an_auditor_without_personal_data_sees_a_replay_masked_as_the_households_page_is(console_app):
    from adapters.integration.feed import mask_name

    console = console_app.app.state.console  # type: ignore[attr-defined]
    console.accounts.add("auditor-masked", PASSWORD, name="审计员", role="auditor", unit="县审计局",
                         personal_data=False)
    hid = household(console_app, inside=True)
    services = console_app.app.state.services  # type: ignore[attr-defined]
    names = {e["actor"]["name"] for e in services.timeline(services_principal(console_app, "auditor"), hid)
             if e["actor"].get("name")}
    assert names
    log_in(console_app, "auditor-masked")
    page = console_app.get(f"/console/audit/replay?household_id={hid}")
    assert page.status_code == 200 and "计入" in page.text
    for name in names:
        assert f"<td>{html.escape(name)}</td>" not in page.text
        assert f"<td>{html.escape(mask_name(name))}</td>" in page.text


def test_an_auditor_without_personal_data_sees_the_access_logs_searches_masked(console_app):
    console = console_app.app.state.console  # type: ignore[attr-defined]
    console.accounts.add("auditor-masked-2", PASSWORD, name="审计员", role="auditor", unit="县审计局",
                         personal_data=False)
    log_in(console_app, "village")
    for q in ("522631199307218576", "胡德"):  # an ID number and a name, typed into the search
        console_app.get("/console/search", params={"q": q})
    log_in(console_app, "auditor-masked-2")
    for path in ("/console/audit", "/console/"):
        page = console_app.get(path).text
        assert "522631199307218576" not in page and "<td>胡德</td>" not in page, path
        assert "522631********8576" in page and "<td>胡*</td>" in page, path
    log_in(console_app, "auditor")  # entitled: the log as it was written
    page = console_app.get("/console/audit").text
    assert "522631199307218576" in page and "<td>胡德</td>" in page


def test_a_household_with_no_open_procedure_shows_no_procedure_start(console_app):
    services = console_app.app.state.services  # type: ignore[attr-defined]
    with services.connect() as conn:
        hid = conn.execute(sa.select(roster.c.household_id).where(
            roster.c.open_procedure.is_(None), roster.c.procedure_started_on.is_not(None)).limit(1)).scalar_one()
    log_in(console_app, "county")
    page = console_app.get(f"/console/households/{hid}").text
    assert "<dt>程序开始</dt><dd>—</dd>" in page


def test_the_ledgers_page_lists_a_page_of_problems_with_the_total_and_the_overdue_alone(console_app):
    from adapters.console.routes import PAGE_SIZE

    log_in(console_app, "county")
    services = console_app.app.state.services  # type: ignore[attr-defined]
    day = date(2026, 12, 31)
    whole = services.ledgers(services_principal(console_app, "county"), day, None)["problems"]
    assert whole, "the demo county should have problems"
    page = console_app.get(f"/console/ledgers?as_of={day}")
    listed = re.findall(r'href="/console/problems/([^"?]+)\?as_of=', page.text)
    assert listed == [p["problem_id"] for p in whole][:PAGE_SIZE]
    assert f"{len(whole)} 个问题 · 第 1/{-(-len(whole) // PAGE_SIZE)} 页" in page.text
    late = [p["problem_id"] for p in whole if p["overdue"]]
    overdue = console_app.get(f"/console/ledgers?as_of={day}&overdue=yes")
    assert re.findall(r'href="/console/problems/([^"?]+)\?as_of=', overdue.text) == late[:PAGE_SIZE]
    assert f"超期未销号 {len(late)} 个问题" in overdue.text


def test_the_inspectors_workbench_counts_the_stored_run_as_the_rules_count_it_now(console_app):
    from projections import findings_store

    log_in(console_app, "inspector")
    today = date.today()
    live = console_app.get("/console/")
    assert f"督查发现 (截至 {today}" in live.text and "保存的督查结果" not in live.text
    services = console_app.app.state.services  # type: ignore[attr-defined]
    with services.engine.begin() as conn:
        findings_store.store_run(conn, services.app.policies, today, 0, 0)
    kept = console_app.get("/console/")
    assert "保存的督查结果" in kept.text

    def counts(text: str) -> list[tuple[str, str]]:
        return re.findall(r'findings\?(?:rule|township)=([^&"]+)&as_of=[^"]+">[^<]*</a></td><td>(\d+)</td>', text)

    assert counts(kept.text) and counts(kept.text) == counts(live.text)


def test_the_findings_page_pages_a_stored_run_with_its_total(console_app):
    from adapters.console.routes import FINDINGS_SHOWN
    from projections import findings_store

    log_in(console_app, "inspector")
    services = console_app.app.state.services  # type: ignore[attr-defined]
    day = date(2026, 11, 30)
    with services.engine.begin() as conn:
        run = findings_store.store_run(conn, services.app.policies, day, 0, 0)
    assert run.count > FINDINGS_SHOWN, "the demo county should have more findings than one page"
    found = services.findings(services_principal(console_app, "inspector"), day, None, None)["findings"]
    seen: list[str] = []
    page = console_app.get(f"/console/findings?as_of={day}")
    while True:
        assert f"截至 {day} · {len(found)} 条" in page.text and "保存的督查结果" in page.text
        seen += re.findall(r'name="key" value="([^"]*)"', page.text)
        following = re.search(r'id="next-page" href="([^"]+)"', page.text)
        if following is None:
            break
        page = console_app.get(html.unescape(following.group(1)))
    assert seen == [f["key"] for f in found if not f["raised_problem"]]  # one already raised has no box
