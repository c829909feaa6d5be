"""Demo stage 40 (督查) after the earlier stages on a small county: every rule finds its planted cases, the
second import of the same export adds nothing, the findings workbook is written and problems are raised once."""

from __future__ import annotations

import gc
import random

import pytest
from openpyxl import load_workbook

from adapters.demo import DemoContext, stages
from adapters.readside.readmodels import read_models
from adapters.store.storage import bootstrap
from projections.queries.inspector import RULES, Inspector
from tests.workbooks import table


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("demo")
    app = bootstrap(str(tmp / "demo.db"))
    ctx = DemoContext(app=app, rng=random.Random(2022), households=240, output_dir=tmp / "out")
    summaries = {}
    try:
        for stage in stages():
            summaries[stage.name] = stage.run(ctx)
        yield app, ctx, summaries["stage_40_inspection"]
    finally:
        app.close()


def test_every_rule_finds_something_in_the_demo(demo):
    _, _, summary = demo
    counts = {rule: summary[f"规则: {info.label}"] for rule, info in RULES.items()}
    assert all(n > 0 for n in counts.values()), counts
    assert summary["督查发现问题"] == sum(counts.values())


def test_the_export_goes_in_once_and_bad_rows_are_reported(demo):
    _, _, summary = demo
    assert summary["导入事实 (两次导出)"] > 0 and summary["重复导入新增事实"] == 0
    assert summary["未能读取的行"] == 2 and summary["区划未匹配的行"] == 1
    assert summary["筛查: 部门线索"] > 0 and summary["筛查: 查无此人"] > 0 and summary["筛查: 已登记过的线索"] > 0


def test_the_problems_are_raised_once_and_the_workbook_is_written(demo):
    app, ctx, summary = demo
    raised = summary["登记入问题台账"] + summary["已在问题台账"]
    assert raised == summary["督查发现问题"]
    # the simulated clock enters a few township entries weeks late, and the inspector finds them
    assert summary["规则: 补录倒签"] > 0
    report = next(p for p in ctx.shared["report_files"] if "督查问题清单" in p.name)
    rows = table(load_workbook(report)["问题清单"])
    assert len(rows) == summary["督查发现问题"]
    # raising the same findings again changes nothing
    from adapters.readside.readmodels import read_models
    from projections.queries.inspector import Inspector, problem_commands

    with read_models(app) as rm:
        rm.catch_up()
        with rm.engine.connect() as conn:
            findings = Inspector(conn, app.policies, ctx.shared["today"]).run()
    again = [f for f in findings if f.rule != "backdated_entry"]
    assert problem_commands(again, ctx.shared["today"]) == []


def run_inspection(app, as_of):
    with read_models(app) as rm:
        rm.catch_up()
        with rm.engine.connect() as conn:
            return Inspector(conn, app.policies, as_of).run()


def test_each_finding_reads_the_same_sentence_and_evidence_late_as_when_its_rule_found_it(demo):
    """A finding's sentence and evidence are written when first read: read after the run, its connection
    closed, they are what each rule writes the moment it finds them, for every rule; the cycle's measures and
    the problem's status are added after the rule's own evidence."""
    app, ctx, _ = demo
    today = ctx.shared["today"]
    at_once = {}
    with read_models(app) as rm:
        rm.catch_up()
        with rm.engine.connect() as conn:
            inspector = Inspector(conn, app.policies, today)
            for rule in RULES:
                for f in getattr(inspector, rule)():
                    at_once[f.key] = (f.severity, f.detail, dict(f.evidence))
            late = Inspector(conn, app.policies, today).run()
    assert {f.rule for f in late} == set(RULES) and len(late) == len(at_once)
    for f in late:   # read only now
        severity, detail, evidence = at_once[f.key]
        assert (f.severity, f.detail) == (severity, detail) and detail
        assert list(f.evidence)[: len(evidence)] == list(evidence)
        assert {k: f.evidence[k] for k in evidence} == evidence
        added = [k for k in f.evidence if k not in evidence]
        expected = (["measures"] if f.rule in Inspector.MEASURE_RULES else []) + (
            ["problem_status"] if f.raised_problem else [])
        assert added == expected, f.key
    assert any(f.evidence.get("measures") for f in late)
    assert any(f.raised_problem for f in late)


def test_the_measures_read_in_one_pass_are_those_read_household_by_household(demo, monkeypatch):
    app, ctx, _ = demo
    monkeypatch.setattr(Inspector, "MEASURES_SCAN_FROM", 10**9)
    by_household = [f.as_dict() for f in run_inspection(app, ctx.shared["today"])]
    monkeypatch.setattr(Inspector, "MEASURES_SCAN_FROM", 0)
    one_pass = [f.as_dict() for f in run_inspection(app, ctx.shared["today"])]
    assert one_pass == by_household
    assert any(d["evidence"].get("measures") for d in one_pass)


def test_a_run_leaves_the_garbage_collector_as_it_found_it(demo):
    app, ctx, _ = demo
    assert gc.isenabled()
    run_inspection(app, ctx.shared["today"])
    assert gc.isenabled()
    gc.disable()
    try:
        run_inspection(app, ctx.shared["today"])
        assert not gc.isenabled()
    finally:
        gc.enable()
