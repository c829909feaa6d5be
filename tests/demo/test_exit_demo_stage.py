"""Demo stage 20 (帮扶、动态管理与风险消除) on a small county of its own: the stage shows every exit refusal,
exits, rollbacks and re-inclusions, leaves the shared context true to the store, and reproduces with its seed."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest

from adapters.demo import DemoContext
from adapters.demo import stage_20_assistance_exit as stage
from adapters.store.storage import bootstrap
from casecore.values import Stage
from tests.builders import COUNTY_UNIT, TOWNSHIP_UNIT, VILLAGE_CODE, inclusion_path, person, register

RISKS = (("illness",), ("schooling",), ("unstable_employment",), ("housing", "illness"), ("industry_failure",))


def actor_for(role: str, division_code: str, n: int = 0) -> dict:
    unit = {"village": division_code, "township": TOWNSHIP_UNIT, "county": COUNTY_UNIT}[role]
    return {"id": f"{role}-{n}", "name": f"{role}{n}", "role": role, "unit": unit}


def small_county(app, n: int = 40) -> dict:
    """`n` households included in spring 2022 (every eighth without labour), as stage 10 leaves them."""
    rng = random.Random(5)
    households, included_on = {}, {}
    for i in range(n):
        hid = f"{VILLAGE_CODE}{i:04d}"
        labourless = i % 8 == 7
        members = [person(3 * i + 1, date(1950 if labourless else 1978, 3, 4), labour="none" if labourless else "full"),
                   person(3 * i + 2, date(1952 if labourless else 1980, 6, 7), labour="none" if labourless else "weak",
                          relation="配偶")]
        household_type = "general" if i % 2 else "poverty_alleviated"
        start = date(2022, 3, 2) + timedelta(days=rng.randrange(60))
        commands = [register(hid, on=date(2022, 3, 1), household_type=household_type, members=members),
                    *inclusion_path(hid, start=start, per_capita_income=rng.randrange(4500, 6500),
                                    category="marginal" if household_type == "general" else "unstable_alleviated",
                                    risk_types=RISKS[i % len(RISKS)])]
        for command in commands:
            assert app.handle(command).ok, command
        households[hid] = {"household_id": hid, "division_code": VILLAGE_CODE, "household_type": household_type,
                           "members": members}
        included_on[hid] = start + timedelta(days=11)
    return {"county": {"code": "522631", "name": "黎平县", "townships": []}, "households": households,
            "actor_for": actor_for, "monitored": set(households), "included_on": included_on,
            "today": max(included_on.values()) + timedelta(days=1)}


def run_stage(path, seed: int = 11):
    app = bootstrap(str(path))
    ctx = DemoContext(app=app, rng=random.Random(seed), households=40, output_dir=path.parent)
    ctx.shared.update(small_county(app))
    summary = stage.run(ctx)
    return app, ctx, summary


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    app, ctx, summary = run_stage(tmp_path_factory.mktemp("demo") / "demo.db")
    yield app, ctx, summary
    app.close()


def test_the_stage_shows_the_engine_refusing_each_exit_rule(ran):
    _, ctx, summary = ran
    for rule in ("min_assistance_months", "exit_income_below_line", "exit_income_assessment_missing",
                 "open_guarantee", "household_without_labour", "post_elimination_assessment", "measure_does_not_fit",
                 "publicity_min_days"):
        assert ctx.refusals[rule] > 0, (rule, ctx.refusals)
    assert "持续跟踪" in ctx.refusal_examples["household_without_labour"]
    assert ctx.refusals["not_authorised"] > 0  # four-eyes at the county's exit decision
    assert summary["预设拒绝"] == sum(ctx.refusals.values())
    assert summary["意外结果"] == 0


def test_the_county_lives_through_assistance_exits_rollbacks_and_reinclusions(ran):
    _, _, summary = ran
    for key in ("指定帮扶责任人", "制定帮扶措施", "落实帮扶措施", "收入核算", "帮扶消除", "风险消除回退",
                "再次纳入监测"):
        assert summary[key] > 0, (key, summary)
    assert summary["整户无劳动力持续跟踪"] == 5
    assert summary["期初监测户"] == 40


def test_the_shared_context_matches_what_the_store_says(ran):
    app, ctx, summary = ran
    assert ctx.shared["today"] == date(2023, 12, 31)
    stages = {hid: app.get_household(hid).stage for hid in ctx.shared["households"]}
    assert ctx.shared["monitored"] == {h for h, s in stages.items() if s in (Stage.MONITORED, Stage.IN_EXIT)}
    assert set(ctx.shared["eliminated"]) == {h for h, s in stages.items() if s == Stage.RISK_ELIMINATED}
    assert summary["期末监测户"] == len(ctx.shared["monitored"])
    for hid in ctx.shared["monitored"]:
        assert ctx.shared["included_on"][hid] == app.get_household(hid).included_on
    labourless = [h for h in ctx.shared["households"] if not app.get_household(h).has_labour()]
    assert labourless and all(stages[h] == Stage.MONITORED for h in labourless)  # 持续跟踪: never eliminated


def test_the_same_seed_tells_the_same_story(ran, tmp_path):
    _, _, summary = ran
    app, _, again = run_stage(tmp_path / "again.db")
    app.close()
    assert again == summary
