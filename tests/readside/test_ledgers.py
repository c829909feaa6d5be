"""双台账 on the real stores: the ledgers folded from the log, rebuilt or caught up, printed to a workbook."""

from __future__ import annotations

import tempfile
from datetime import date, timedelta
from pathlib import Path

import orjson
import sqlalchemy as sa
from freezegun import freeze_time
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook
from typer.testing import CliRunner

from adapters.cli import app as cli
from adapters.output.sheets import HEADER_ROWS, display_width
from adapters.output.workbooks import PROBLEM_COLUMNS, RECTIFICATION_COLUMNS
from adapters.readside.readmodels import read_models
from adapters.store.storage import bootstrap
from adapters.usecases import read_ledgers
from projections.activity import activity, activity_households, activity_problems
from projections.ledger import problem_ledger, rectification_ledger
from projections.registry import by_name
from tests.builders import cmd, register, run
from tests.problems import (
    COUNTY_LEAD,
    RESPONSIBLE,
    WORKER,
    accountable,
    assign,
    closed_path,
    raise_,
    rectify,
    reject,
    reopen,
    report,
    sign,
)

TABLES = (problem_ledger, rectification_ledger, activity, activity_households, activity_problems)


def _history(app) -> None:
    """Three problems: closed after a rejection and redo; overdue and held accountable; closed then reopened."""
    run(app, [register("H1", on=date(2022, 3, 1), key_county=True), register("H2", on=date(2022, 3, 1))])
    run(app, [raise_("P1", date(2022, 4, 10)), assign("P1", date(2022, 4, 11), deadline=date(2022, 5, 31)),
              rectify("P1", date(2022, 4, 20)), report("P1", date(2022, 4, 25)), sign("P1", "responsible",
              date(2022, 4, 26)), reject("P1", "supervisor", date(2022, 4, 27), reason="佐证不足"),
              rectify("P1", date(2022, 5, 3), action="补充佐证材料"), report("P1", date(2022, 5, 4)),
              sign("P1", "responsible", date(2022, 5, 5)), sign("P1", "supervisor", date(2022, 5, 6))])
    run(app, [raise_("P2", date(2022, 4, 12), household_id="H2", kind="no_responsible_cadre"),
              assign("P2", date(2022, 4, 13), deadline=date(2022, 5, 15)), rectify("P2", date(2022, 5, 1)),
              accountable("P2", "both", date(2022, 6, 1), reason="超期未整改到位")])
    run(app, [*closed_path("P3", date(2022, 4, 15), household_id=None, source="self_check"),
              reopen("P3", date(2022, 6, 20), deadline=date(2022, 7, 20))])


def _snapshot(engine) -> dict[str, list]:
    with engine.connect() as conn:
        return {t.name: sorted(tuple(str(v) for v in r) for r in conn.execute(sa.select(t))) for t in TABLES}


# --- the ledgers' rows --------------------------------------------------------------------------------


def test_the_problem_ledger_has_one_row_per_problem_with_its_responsibility_status_and_overdue_days(app):
    _history(app)
    problems, _entries = read_ledgers(app, date(2022, 6, 30), None)
    by_id = {p["problem_id"]: p for p in problems}
    assert set(by_id) == {"P1", "P2", "P3"}
    p1, p2, p3 = by_id["P1"], by_id["P2"], by_id["P3"]
    assert (p1["status"], p1["closed_on"], p1["rejections"], p1["actions"]) == ("closed", date(2022, 5, 6), 1, 2)
    assert (p1["responsible_person"], p1["supervisor_person"]) == ("t-resp-1", "c-sup-1")
    assert (p1["found_on"], p1["found_by_id"], p1["source"]) == (date(2022, 4, 10), "insp-1", "supervision")
    assert p1["overdue_days"] == 0
    assert (p2["status"], p2["overdue_days"], p2["accountability"]) == ("in_rectification", 46, 1)
    assert (p3["status"], p3["reopened"], p3["accountability"], p3["deadline"]) == (
        "in_rectification", 1, 1, date(2022, 7, 20))


def test_the_rectification_ledger_has_a_row_for_every_action_sign_off_rejection_and_accountability(app):
    _history(app)
    _, entries = read_ledgers(app, date(2022, 6, 30), None)
    p1 = [(e["entry"], e["party"], e["acted_on"]) for e in entries if e["problem_id"] == "P1"]
    assert p1 == [
        ("assigned", None, date(2022, 4, 11)), ("rectification", None, date(2022, 4, 20)),
        ("reported", None, date(2022, 4, 25)),
        ("signed_off", "responsible", date(2022, 4, 26)), ("rejected", "supervisor", date(2022, 4, 27)),
        ("rectification", None, date(2022, 5, 3)), ("reported", None, date(2022, 5, 4)),
        ("signed_off", "responsible", date(2022, 5, 5)), ("signed_off", "supervisor", date(2022, 5, 6)),
    ]
    rejection = next(e for e in entries if e["entry"] == "rejected")
    assert (rejection["content"], rejection["actor_id"]) == ("佐证不足", "c-sup-1")
    held = next(e for e in entries if e["entry"] == "accountability")
    assert held["persons"] == "522631101000 乡镇责任人(t-resp-1); 522631000000 县级监督人(c-sup-1)"
    assert held["overdue_days"] == 17
    reopened = next(e for e in entries if e["entry"] == "reopened")
    assert (reopened["problem_id"], reopened["party"]) == ("P3", "both")
    assert next(e for e in entries if e["entry"] == "rectification")["evidence"] == "P1-整改照片.jpg"


def test_the_ledgers_as_of_a_date_leave_out_what_came_later(app):
    _history(app)
    problems, entries = read_ledgers(app, date(2022, 4, 11), None)
    assert [p["problem_id"] for p in problems] == ["P1"]
    assert [(e["problem_id"], e["entry"]) for e in entries] == [("P1", "assigned")]
    assert problems[0]["status"] == "assigned"


def test_the_division_filter_keeps_only_problems_under_the_prefix(app):
    _history(app)
    run(app, [raise_("P9", date(2022, 4, 10), household_id=None, division_code="522631102003")])
    problems, _ = read_ledgers(app, date(2022, 6, 30), "522631102")
    assert [p["problem_id"] for p in problems] == ["P9"]


# --- overdue as of a date (computed when asked, not stored) ---------------------------------------------


def test_overdue_days_follow_the_date_the_ledger_is_read_without_any_new_event(sqlite_url):
    app = bootstrap(sqlite_url)
    run(app, [raise_("P1"), assign("P1", deadline=date(2022, 5, 31)), rectify("P1")])
    app.close()
    runner = CliRunner()
    seen = {}
    for today in ("2022-05-31", "2022-06-01", "2022-06-20"):
        with freeze_time(today):
            result = runner.invoke(cli, ["ledger", "--db", sqlite_url, "--json"])
        assert result.exit_code == 0, result.output
        seen[today] = orjson.loads(result.stdout)["problems"][0]["overdue_days"]
    assert seen == {"2022-05-31": 0, "2022-06-01": 1, "2022-06-20": 20}


def test_a_problem_closed_late_is_overdue_as_of_a_date_before_its_closing_and_not_after(app):
    run(app, [raise_("P1"), assign("P1", deadline=date(2022, 5, 31)), rectify("P1", date(2022, 6, 1)),
              report("P1", date(2022, 6, 2)), sign("P1", "responsible", date(2022, 6, 3)),
              sign("P1", "supervisor", date(2022, 6, 5))])
    before, _ = read_ledgers(app, date(2022, 6, 4), None)
    after, _ = read_ledgers(app, date(2022, 6, 5), None)
    assert (before[0]["overdue"], before[0]["overdue_days"]) == (True, 4)
    assert (after[0]["overdue"], after[0]["overdue_days"]) == (False, 0)


def test_the_ledger_as_of_a_past_date_shows_the_problem_as_it_stood_then(app):
    _history(app)
    between, _ = read_ledgers(app, date(2022, 6, 1), None)   # P3 closed on 2022-05-03, reopened on 2022-06-20
    p3 = next(p for p in between if p["problem_id"] == "P3")
    assert (p3["status"], p3["closed_on"], p3["deadline"], p3["overdue"]) == (
        "closed", date(2022, 5, 3), date(2022, 6, 4), False)
    assert (p3["responsible_signed_by"], p3["supervisor_signed_by"]) == ("t-resp-1", "c-sup-1")
    during, _ = read_ledgers(app, date(2022, 4, 28), None)   # P1 rejected on 04-27, redone from 05-03
    p1 = next(p for p in during if p["problem_id"] == "P1")
    assert (p1["status"], p1["rejections"], p1["actions"], p1["responsible_signed_on"]) == (
        "in_rectification", 1, 1, None)


def test_a_reopened_problem_read_before_its_first_closing_is_judged_by_its_first_deadline(app):
    run(app, [raise_("P1", date(2022, 4, 10)), assign("P1", date(2022, 4, 11), deadline=date(2022, 5, 31)),
              rectify("P1", date(2022, 6, 1)), report("P1", date(2022, 6, 2)), sign("P1", "responsible",
              date(2022, 6, 8)), sign("P1", "supervisor", date(2022, 6, 10)),
              reopen("P1", date(2022, 7, 10), deadline=date(2022, 8, 10))])
    before, _ = read_ledgers(app, date(2022, 6, 5), None)
    assert (before[0]["deadline"], before[0]["overdue_days"]) == (date(2022, 5, 31), 5)
    after, _ = read_ledgers(app, date(2022, 8, 15), None)
    assert (after[0]["deadline"], after[0]["overdue_days"], after[0]["status"]) == (
        date(2022, 8, 10), 5, "in_rectification")


# --- the workbook a county office prints ------------------------------------------------------------


def test_the_workbook_has_both_ledgers_with_chinese_headers_one_row_each_and_real_dates(sqlite_url, tmp_path):
    app = bootstrap(sqlite_url)
    _history(app)
    problems, entries = read_ledgers(app, date(2022, 6, 30), None)
    app.close()
    out = tmp_path / "台账.xlsx"
    result = CliRunner().invoke(cli, ["ledger", "--db", sqlite_url, "--as-of", "2022-06-30", "--xlsx", str(out)])
    assert result.exit_code == 0, result.output
    wb = load_workbook(out)
    assert wb.sheetnames == ["问题台账", "整改台账", "问题台账(明细)"]
    for ws, columns, n in ((wb["问题台账"], PROBLEM_COLUMNS, len(problems)),
                           (wb["整改台账"], RECTIFICATION_COLUMNS, len(entries))):
        headers = [c.value.replace("\n", "") for c in ws[HEADER_ROWS]]
        assert headers == [c.header for c in columns]
        assert ws.max_row - HEADER_ROWS == n
        assert ws.freeze_panes == f"A{HEADER_ROWS + 1}"
        assert "截至2022年6月30日" in ws["A1"].value
        for j, col in enumerate(columns, start=1):
            width = ws.column_dimensions[ws.cell(row=HEADER_ROWS, column=j).column_letter].width
            assert width >= display_width(col.header) / 2, col.header  # a header wraps onto two lines at most
    sheet = wb["问题台账"]
    found = [c.header for c in PROBLEM_COLUMNS].index("发现日期") + 1
    first = sheet.cell(row=HEADER_ROWS + 1, column=found)
    assert first.is_date and first.value.date() == date(2022, 4, 10)
    status = [c.header for c in PROBLEM_COLUMNS].index("整改状态") + 1
    assert {sheet.cell(row=r, column=status).value for r in range(HEADER_ROWS + 1, sheet.max_row + 1)} == {
        "已销号", "整改中"}
    assert len(problems) == 3 and len(entries) == 9 + 3 + 6  # P1 with its redo, P2 held accountable, P3 reopened


# --- rebuild == incremental catch-up ----------------------------------------------------------------

ACTS = st.lists(st.tuples(st.integers(0, 3), st.sampled_from(
    ["raise", "assign", "rectify", "report", "sign_r", "sign_s", "reject_r", "reject_s", "accountable", "reopen",
     "lead", "sign_s_by_r"])), min_size=1, max_size=40)


def _act(name: str, pid: str, on: date, hid: str):
    return {
        "raise": lambda: raise_(pid, on, household_id=hid if pid != "P3" else None),
        "assign": lambda: assign(pid, on, deadline=on + timedelta(days=5)),
        "rectify": lambda: rectify(pid, on),
        "report": lambda: report(pid, on),
        "sign_r": lambda: sign(pid, "responsible", on),
        "sign_s": lambda: sign(pid, "supervisor", on),
        "reject_r": lambda: reject(pid, "responsible", on),
        "reject_s": lambda: reject(pid, "supervisor", on),
        "accountable": lambda: accountable(pid, "responsible", on, actor=COUNTY_LEAD),
        "reopen": lambda: reopen(pid, on, deadline=on + timedelta(days=9)),
        "lead": lambda: cmd("record_lead", on, household_id=hid, lead_id=f"{hid}-{on}-{pid}", source="cadre_screening",
                            risk_types=["illness"], detail="排查"),
        "sign_s_by_r": lambda: sign(pid, "supervisor", on, actor=RESPONSIBLE | {"role": "county"}),
    }[name]()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(acts=ACTS, batch=st.integers(1, 7), every=st.integers(1, 9))
def test_the_ledgers_and_activity_rebuilt_from_the_log_equal_their_incremental_catch_up(acts, batch, every):
    with tempfile.TemporaryDirectory() as tmp:
        app = bootstrap(str(Path(tmp) / "h.db"))
        run(app, [register("H0", on=date(2022, 3, 1), key_county=True),
                  register("H1", on=date(2022, 3, 1), relocated=True, resettlement_site="安置点甲")])
        projections = [by_name("ledger"), by_name("activity")]
        with read_models(app, projections, batch_size=batch) as rm:
            on = date(2022, 4, 1)
            for i, (n, name) in enumerate(acts):
                app.handle(_act(name, f"P{n}", on, f"H{n % 2}"))
                on += timedelta(days=1)
                if i % every == 0:
                    rm.catch_up()
            rm.catch_up()
            incremental = _snapshot(rm.engine)
            for p in projections:
                rm.runner.rebuild(p)
            assert _snapshot(rm.engine) == incremental
        app.close()


def test_a_rebuild_on_the_store_gives_the_same_ledgers_as_the_catch_up(app):
    _history(app)
    projections = [by_name("ledger"), by_name("activity")]
    with read_models(app, projections, batch_size=3) as rm:
        rm.catch_up()
        incremental = _snapshot(rm.engine)
        for p in projections:
            rm.runner.rebuild(p)
        assert _snapshot(rm.engine) == incremental
        with rm.engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(problem_ledger)).scalar_one() == 3


def test_the_ledger_cli_prints_both_ledgers_for_a_county_office(sqlite_url):
    app = bootstrap(sqlite_url)
    _history(app)
    app.close()
    result = CliRunner().invoke(cli, ["ledger", "--db", sqlite_url, "--as-of", "2022-06-30"])
    assert result.exit_code == 0, result.output
    assert "问题台账" in result.stdout and "整改台账" in result.stdout
    assert "共 3 个问题: 已销号 1 个, 超期未销号 1 个" in result.stdout


def test_the_ledger_cli_refuses_a_malformed_date_with_a_sentence(sqlite_url):
    result = CliRunner().invoke(cli, ["ledger", "--db", sqlite_url, "--as-of", "30/06/2022"])
    assert result.exit_code == 2
    assert "YYYY-MM-DD" in result.output


def test_a_worker_recording_rectification_appears_in_the_ledger_as_the_one_who_acted(app):
    run(app, [raise_("P1"), assign("P1"), rectify("P1", actor=WORKER)])
    _, entries = read_ledgers(app, date(2022, 6, 30), None)
    action = next(e for e in entries if e["entry"] == "rectification")
    assert (action["actor_id"], action["actor_name"]) == (WORKER["id"], WORKER["name"])
