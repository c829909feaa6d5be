"""Demo stage 30 (问题整改与双台账) on a small county: stories play out, planted refusals are refused, and the
ledger workbook and monthly dispatch are written."""

from __future__ import annotations

import random
from datetime import date

from openpyxl import load_workbook

from adapters.demo import DemoContext
from adapters.demo import stage_30_rectification as stage
from adapters.output.sheets import HEADER_ROWS
from adapters.store.storage import bootstrap
from casecore.commands import parse_command
from tests.builders import person

COUNTY = "522631"
TOWNSHIPS = ["522631101", "522631102"]


def actor_for(role: str, division_code: str, n: int = 0) -> dict[str, str]:
    """The shared context's contract (DEMO_SHARED.md): one person per role, unit and `n`."""
    unit = {"village": division_code, "township": division_code[:9] + "000"}.get(role, COUNTY + "000000")
    return {"id": f"{role[0]}-{unit}-{n}", "name": f"{role}{n}", "role": role, "unit": unit}


def _context(tmp_path, n_households: int = 40, seed: int = 7) -> DemoContext:
    tmp_path.mkdir(parents=True, exist_ok=True)
    app = bootstrap(str(tmp_path / "demo.db"))
    ctx = DemoContext(app=app, rng=random.Random(seed), households=n_households, output_dir=tmp_path / "out")
    households = {}
    commands = []
    for i in range(n_households):
        village = f"{TOWNSHIPS[i % 2]}{1 + i % 3:03d}"
        hid = f"H{i:03d}"
        relocated = i % 5 == 0
        households[hid] = {"household_id": hid, "division_code": village, "household_type": "general",
                           "members": [person(i + 1)], "key_county": True, "relocated": relocated,
                           "resettlement_site": "城关安置点" if relocated else None}
        commands.append(parse_command({"command": "register_household", "on": "2022-03-01",
                                       "actor": actor_for("village", village), **households[hid]}))
    assert all(o.ok for o in app.handle_many(commands))
    ctx.shared.update(
        county={"code": COUNTY, "name": "黎平县",
                "townships": [{"code": t, "name": f"乡镇{t[-1]}", "villages": []} for t in TOWNSHIPS]},
        households=households, actor_for=actor_for, monitored=set(list(households)[: n_households // 2]),
        included_on={}, today=date(2022, 7, 1),
    )
    return ctx


def test_the_stage_plays_out_problems_with_only_the_planted_refusals_and_writes_both_workbooks(tmp_path):
    ctx = _context(tmp_path)
    summary = stage.run(ctx)
    try:
        assert summary["登记问题"] == 12 and summary["意外拒绝"] == 0
        assert summary["计划内拒绝"] >= 2
        assert summary["问责"] > 0 and summary["双销号(销号次数)"] > 0
        assert set(ctx.refusals) <= {"invalid_transition", "not_authorised"}
        assert sum(ctx.refusals.values()) == summary["计划内拒绝"]
        [ledger_file] = ctx.shared["ledger_files"]
        june, report_file = ctx.shared["report_files"]
        assert june.name.endswith("2022-06.xlsx") and report_file.name.endswith("2022-08.xlsx")
        ledger = load_workbook(ledger_file)
        assert ledger.sheetnames == ["问题台账", "整改台账", "问题台账(明细)"]
        assert ledger["问题台账"].max_row - HEADER_ROWS == summary["登记问题"]
        acts = ledger["整改台账"].max_row - HEADER_ROWS
        assert acts >= summary["明确双责任"] + summary["整改措施"] + summary["问责"]
        report = load_workbook(report_file)
        assert report.sheetnames == ["月度调度", "重点区域", "专项行动节点"]
        names = [r[0].value.strip() for r in report["月度调度"].iter_rows(min_row=HEADER_ROWS + 1)]
        # one county: its 合计 is the total, so no 总计 row repeats it
        assert names[0] == "黎平县 合计" and "总计" not in names
        assert ctx.shared["today"] >= date(2022, 7, 1)
    finally:
        ctx.app.close()


def test_the_same_seed_tells_the_same_stories(tmp_path):
    first = _context(tmp_path / "a", seed=11)
    second = _context(tmp_path / "b", seed=11)
    try:
        assert stage.run(first) == stage.run(second)
    finally:
        first.app.close()
        second.app.close()
