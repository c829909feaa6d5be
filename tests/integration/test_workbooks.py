"""Text a cadre typed or an import gave comes out of every workbook and CSV as text: never a live formula,
never a character that stops the file from being written, shown as typed apart from the `'` in front of a
formula-like start and the replacement of control characters — on both stores, through the commands a user
runs."""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from adapters.cli import app as cli
from adapters.readside.places import remember
from adapters.store.storage import bootstrap
from tests import problems as p
from tests.builders import TOWNSHIP_UNIT, VILLAGE_CODE, cmd, inclusion_path, person, register, run

runner = CliRunner()

#: what a cadre typed → what the workbook shows
FORMULAS = {
    '=HYPERLINK("http://evil.example/x","点击查看")': '\'=HYPERLINK("http://evil.example/x","点击查看")',
    "=cmd|' /C calc'!A0": "'=cmd|' /C calc'!A0",
    "+1": "'+1",
    "-1+1": "'-1+1",
    "@SUM(A1:A9)": "'@SUM(A1:A9)",
}
#: free text may also hold tabs and newlines (names and units may not: the contract refuses them)
FREE_TEXT, FREE_TEXT_SHOWN = "\t王小二家\n未落实", "'\t王小二家\n未落实"
#: division names an import gave, with control characters and a formula
TOWNSHIP_NAME, TOWNSHIP_SHOWN = "新坡\x01镇\x1f", "新坡\ufffd镇\ufffd"
VILLAGE_NAME, VILLAGE_SHOWN = "=上寨\x00村", "'=上寨\ufffd村"


@pytest.fixture
def hostile(db_url) -> str:
    """One household and one problem per formula-like text: the head's name, the cadre, the measure's department
    and responsible person, the problem's description and the rectification all carry it; the township and
    village were named with control characters."""
    app = bootstrap(db_url)
    try:
        for n, text in enumerate(FORMULAS, start=1):
            hid, pid = f"H{n}", f"P{n}"
            run(app, [register(hid, members=[dict(person(n), name=text), person(n + 20, date(1982, 5, 6),
                                                                                  relation="配偶")]),
                      *inclusion_path(hid),
                      cmd("assign_cadre", date(2023, 3, 14), household_id=hid,
                          cadre={"id": f"c-{n}", "name": text, "unit": TOWNSHIP_UNIT}),
                      cmd("plan_measure", date(2023, 3, 15), household_id=hid, measure_id=f"{hid}-M1",
                          measure_type="health", addresses=["illness"], department=text, responsible=text),
                      cmd("raise_problem", date(2023, 3, 20), p.INSPECTOR, problem_id=pid, kind="helped_not",
                          household_id=hid, division_code=VILLAGE_CODE, source="supervision", detail=text),
                      p.assign(pid, date(2023, 3, 21), deadline=date(2023, 4, 30)),
                      p.rectify(pid, date(2023, 3, 25), action=text, evidence=[text]),
                      p.rectify(pid, date(2023, 3, 26), action=FREE_TEXT)])
        assert remember(app, {TOWNSHIP_UNIT[:9]: TOWNSHIP_NAME, VILLAGE_CODE: VILLAGE_NAME}) == 2
    finally:
        app.close()
    return db_url


def _invoke(*args: str) -> None:
    result = runner.invoke(cli, list(args))
    assert result.exit_code == 0, result.output


def _texts(path: Path) -> set[str]:
    """Every text cell of a workbook, after checking that no cell anywhere is a formula or starts like one."""
    wb = load_workbook(path)
    out: set[str] = set()
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (ws.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    assert not cell.value.startswith(("=", "+", "-", "@", "\t", "\r")), (ws.title, cell.value)
                    out.add(cell.value)
    return out


def _contains(texts: set[str], shown: str) -> bool:
    return any(shown in t for t in texts)


def test_every_workbook_shows_typed_formulas_as_text_and_survives_control_characters(hostile, tmp_path):
    books = {name: tmp_path / f"{name}.xlsx" for name in ("roster", "ledger", "findings", "monthly")}
    _invoke("roster", "--db", hostile, "--xlsx", str(books["roster"]))
    _invoke("ledger", "--db", hostile, "--as-of", "2023-12-31", "--xlsx", str(books["ledger"]))
    _invoke("inspect", "--db", hostile, "--as-of", "2023-12-31", "--xlsx", str(books["findings"]))
    _invoke("report", "monthly", "--month", "2023-03", "--db", hostile, "--xlsx", str(books["monthly"]))
    texts = {name: _texts(path) for name, path in books.items()}
    for typed, shown in FORMULAS.items():
        # the head, the cadre, the measure's department and responsible person on the roster
        assert shown in texts["roster"], typed
        assert _contains(texts["roster"], shown.removeprefix("'")), typed
        # the problem's description and the rectification in the ledgers
        assert shown in texts["ledger"], typed
    assert FREE_TEXT_SHOWN in texts["ledger"]
    assert {TOWNSHIP_SHOWN, VILLAGE_SHOWN} <= texts["roster"]
    assert {TOWNSHIP_SHOWN, VILLAGE_SHOWN} <= texts["ledger"]
    assert {TOWNSHIP_SHOWN, VILLAGE_SHOWN} <= texts["findings"]
    assert _contains(texts["monthly"], TOWNSHIP_SHOWN)


def test_the_roster_csv_escapes_formula_like_text_and_starts_with_a_bom(hostile, tmp_path):
    out = tmp_path / "push.csv"
    _invoke("export", "roster", "--month", "2023-06", "--format", "csv", "--out", str(out), "--db", hostile,
            "--entitled")
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert len(rows) == len(FORMULAS)
    assert {r["head_name"] for r in rows} == set(FORMULAS.values())
    assert {r["cadre_name"] for r in rows} == set(FORMULAS.values())
    for r in rows:  # numbers stay numbers, not escaped text
        assert r["per_capita_income"] == "5000.00" and r["household_size"] == "2"
