"""Random assistance and exit histories: whatever is tried, in whatever order, the household's stage stays
consistent with its open procedure, refusals change nothing, the rules hold for every accepted exit, and the
household replayed from its stored events equals the one that decided."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from casecore.application import CaseManagement
from casecore.errors import CaseError
from casecore.household import public_state
from casecore.values import MeasureType, RiskType, Stage, add_months, month_window
from tests.builders import cmd, guarantees, inclusion_path, measure, person, register, run

START = date(2023, 3, 13)  # inclusion_path() enters the household on this day
STAGE_MOVERS = {"exit_nominated", "exit_verified", "township_reviewed", "county_decided", "risk_eliminated",
                "elimination_rolled_back", "lead_recorded", "lead_verified", "entered_system"}

RAW = st.one_of(
    st.tuples(st.just("plan"), st.sampled_from(list(MeasureType)),
              st.lists(st.sampled_from(list(RiskType)), min_size=1, max_size=2)),
    st.tuples(st.just("implement"), st.integers(0, 5)),
    st.tuples(st.just("end"), st.integers(0, 5)),
    st.tuples(st.just("income"), st.sampled_from([6000, 7299, 7300, 9000])),
    st.tuples(st.just("guarantees"), st.sampled_from(["safe", "d_level", "water", "uninsured"])),
    st.tuples(st.just("add_member"), st.sampled_from(["full", "none"])),
    st.tuples(st.just("remove_member"), st.integers(0, 3), st.sampled_from(["death", "marriage", "moved"])),
    st.tuples(st.just("nominate"), st.sampled_from(["assisted", "natural"])),
    st.tuples(st.just("verify_exit"), st.sampled_from(["meets", "not_meets"])),
    st.tuples(st.just("open_publicity")),
    st.tuples(st.just("close_publicity")),
    st.tuples(st.just("review_township"), st.sampled_from(["pass", "return", "reject"])),
    st.tuples(st.just("approve_county"), st.sampled_from(["approve", "return", "reject"])),
    st.tuples(st.just("mark")),
    st.tuples(st.just("rollback")),
    st.tuples(st.just("lead")),
    st.tuples(st.just("verify_lead"), st.sampled_from(["meets", "not_meets"])),
    st.tuples(st.just("sign_application")),
    st.tuples(st.just("enter_system")),
)
#: purposeful actions, so that random histories often get as far as exits and rollbacks
PURPOSEFUL = st.one_of(
    st.tuples(st.just("assist"), st.sampled_from(list(RiskType))),
    st.tuples(st.just("assess"), st.sampled_from([7299, 7300, 9000, 9000]),
              st.sampled_from(["safe", "safe", "safe", "d_level"])),
    st.tuples(st.just("next"), st.integers(0, 9)),
    st.tuples(st.just("next"), st.integers(0, 9)),
    st.tuples(st.just("advance"), st.integers(1, 9)),
)
ACTIONS = st.one_of(RAW, PURPOSEFUL, PURPOSEFUL, PURPOSEFUL)
HISTORY = st.lists(st.tuples(st.integers(0, 40), ACTIONS), min_size=20, max_size=70)
MEMBERS = st.lists(st.sampled_from(["full", "full", "full", "weak", "none"]), min_size=1, max_size=3)

NEXT = {  # the open procedure's step (or the stage when none is open) → the actions that move it on
    ("exit", "nominated"): [("verify_exit", "meets")] * 9 + [("verify_exit", "not_meets")],
    ("exit", "verified"): [("open_publicity",)],
    ("exit", "in_publicity"): [("close_publicity",)],
    ("exit", "publicity_closed"): [("review_township", "pass")] * 9 + [("review_township", "return")],
    ("exit", "township_passed"): [("approve_county", "approve")] * 9 + [("approve_county", "reject")],
    ("exit", "county_approved"): [("mark",)] * 8 + [("bare_mark",)] + [("review_township", "reject")],
    ("inclusion", "lead_recorded"): [("verify_lead", "meets")] * 9 + [("verify_lead", "not_meets")],
    ("inclusion", "verified"): [("sign_application",)],
    ("inclusion", "applied"): [("open_publicity",)],
    ("inclusion", "in_publicity"): [("close_publicity",)],
    ("inclusion", "publicity_closed"): [("review_township", "pass")],
    ("inclusion", "township_passed"): [("approve_county", "approve")],
    ("inclusion", "county_approved"): [("enter_system",)],
    (None, Stage.MONITORED.value): [("nominate", "assisted"), ("nominate", "natural")]
    + [("fresh_nominate", "assisted")] * 6 + [("fresh_nominate", "natural")] * 2,
    (None, Stage.RISK_ELIMINATED.value): [("rollback",)] * 3 + [("lead",)],
}


def expand(action: tuple, on: date, h, n: int) -> list:
    """The commands an action stands for, on the household as it is now."""
    kind = action[0]
    if kind == "assist":
        fitting = sorted(app_policy(on).fitting_measures(action[1].value))
        return [build(("plan", MeasureType(fitting[n % len(fitting)]), [action[1]]), on, h, n),
                cmd("implement_measure", on, household_id="H1", measure_id=f"M{n}")]
    if kind == "assess":
        return [build(("income", action[1]), on, h, n), build(("guarantees", action[2]), on, h, n)]
    if kind == "next":
        key = (h.procedure, h.step) if h.procedure else (None, h.stage)
        options = NEXT.get(key)
        if not options:
            return []
        chosen = options[action[1] % len(options)]
        if chosen == ("mark",):  # the fresh data the mark needs, a day after the nomination at the earliest
            day = max(on, h.exit_nominated_on + timedelta(days=1))
            return [build(("income", 9000), day, h, n), build(("guarantees", "safe"), day, h, n),
                    build(chosen, day, h, n)]
        if chosen == ("bare_mark",):  # without fresh data of its own
            return [build(("mark",), on, h, n)]
        if chosen[0] == "fresh_nominate":  # assess on the day, then nominate
            return [build(("income", 7299 if n % 4 == 0 else 9000), on, h, n),
                    build(("guarantees", "d_level" if n % 4 == 1 else "safe"), on, h, n),
                    build(("nominate", chosen[1]), on, h, n)]
        if h.procedure == "inclusion" and chosen == ("approve_county", "approve"):  # income over the window
            start, end = month_window(h.procedure_started_on)
            size = max(h.size_on(end), 1)
            return [cmd("assess_income", on, household_id="H1", period_start=start.isoformat(),
                        period_end=end.isoformat(), net_income=str(5000 * size), rigid_expenditure="0"),
                    build(chosen, on, h, n)]
        if chosen == ("lead",):
            return [build(chosen, on, h, n), build(("income", 5000), on, h, n)]
        return [build(chosen, on, h, n)]
    return [build(action, on, h, n)]


def app_policy(on: date):
    from casecore.policy import default_policies

    return default_policies().on(on)


def build(action: tuple, on: date, h, n: int):
    """The command a raw action stands for, on the household as it is now (`n` makes ids unique)."""
    hid = "H1"
    kind = action[0]
    mids = sorted(h.measures)
    present = [pid for pid, m in h.members.items() if m.get("removed_on") is None]
    size = max(h.size_on(month_window(on)[1]), 1)
    if kind == "plan":
        return cmd("plan_measure", on, household_id=hid, measure_id=f"M{n}", measure_type=action[1].value,
                   addresses=[r.value for r in action[2]], department="县乡村振兴局", responsible="责任人")
    if kind in ("implement", "end"):
        mid = mids[action[1] % len(mids)] if mids else "none"
        return cmd(f"{kind}_measure", on, household_id=hid, measure_id=mid)
    if kind == "income":
        start, end = month_window(on)
        return cmd("assess_income", on, household_id=hid, period_start=start.isoformat(), period_end=end.isoformat(),
                   net_income=str(action[1] * size), rigid_expenditure="0")
    if kind == "guarantees":
        gap = {"safe": {}, "d_level": {"housing": "d_level"}, "water": {"drinking_water_safe": False},
               "uninsured": {"members_without_medical_insurance": present[:1]}}[action[1]]
        return guarantees(hid, on, **gap)
    if kind == "add_member":
        born = on - timedelta(days=1) if action[1] == "none" else date(1990, 1, 1)
        return cmd("add_member", on, household_id=hid, reason="birth" if action[1] == "none" else "marriage",
                   member=person(100 + n, born, labour=action[1], relation="新成员"))
    if kind == "remove_member":
        pid = present[action[1] % len(present)]  # the last member is refused by the aggregate, not here
        return cmd("remove_member", on, household_id=hid, person_id=pid, reason=action[2])
    if kind == "nominate":
        return cmd("nominate_exit", on, household_id=hid, mode=action[1])
    if kind == "verify_exit":
        return cmd("verify_exit", on, {"id": "v-2", "role": "village", "unit": "522631101001"}, household_id=hid,
                   finding=action[1])
    if kind in ("open_publicity", "close_publicity", "sign_application", "enter_system"):
        return cmd(kind, on, household_id=hid)
    if kind == "review_township":
        return cmd(kind, on, household_id=hid, decision=action[1])
    if kind == "approve_county":
        return cmd(kind, on, household_id=hid, decision=action[1], category="marginal", risk_types=["illness"])
    if kind == "mark":
        return cmd("mark_risk_eliminated", on, household_id=hid)
    if kind == "rollback":
        return cmd("rollback_elimination", on, household_id=hid, reason="回访发现风险未稳定消除")
    if kind == "lead":
        return cmd("record_lead", on, household_id=hid, lead_id=f"L{n}", source="department_warning",
                   risk_types=["illness"], detail="预警")
    if kind == "verify_lead":
        open_leads = [k for k, v in h.leads.items() if v["status"] == "open"]
        return cmd("verify_lead", on, household_id=hid, lead_id=open_leads[-1] if open_leads else "none",
                   finding=action[1])
    raise AssertionError(kind)


def check_consistent(h) -> None:
    assert (h.stage == Stage.IN_EXIT) == (h.procedure == "exit")
    assert (h.stage == Stage.IN_INCLUSION) == (h.procedure == "inclusion")
    assert (h.procedure is None) == (h.step is None)
    assert (h.stage == Stage.RISK_ELIMINATED) <= (h.eliminated_on is not None)
    if h.stage in (Stage.MONITORED, Stage.IN_EXIT):
        assert h.eliminated_on is None and h.included_on is not None


SEEN: Counter = Counter()


def decide(app, live, command) -> None:
    """Decide one command on the live household, save what it triggers, and check the rules held."""
    day = command.on
    before_version, before_stage = live.version, live.stage
    policy = app.policies.on(day)
    try:
        getattr(live, command.command)(command, app.policies)
    except CaseError as err:
        SEEN[err.rule or err.code] += 1
        assert live.version == before_version and not live.pending_events
        check_consistent(live)
        return
    new = [type(e).TYPE for e in live.pending_events]
    app.save(live)
    SEEN[new[0]] += 1
    check_consistent(live)
    if live.stage != before_stage:
        assert new[0] in STAGE_MOVERS, (before_stage, live.stage, new)
    if new == ["exit_nominated"]:
        assert live.has_labour()
        if command.mode.value == "assisted":
            first = min(m["implemented_on"] for m in live.targeted_measures(day))
            assert add_months(first, policy.exit.min_assistance_months) <= day
        start, end = month_window(day)
        assert live.income_as_of(start, end, day)["per_capita_income"] >= policy.income.monitoring_line
    if new == ["risk_eliminated"]:
        assert live.has_labour() and live.stage == Stage.RISK_ELIMINATED
        fresh = [a for a in live.incomes if a["on"] > live.exit_nominated_on]
        assert fresh and any(g["on"] > live.exit_nominated_on for g in live.guarantees)


def _next(choice: int, gap: int = 1) -> tuple:
    return gap, ("next", choice)


_FILL = (0, ("guarantees", "safe"))
#: a history known to go all the way: exit, rollback, exit again, a new lead and a second inclusion
FULL_CIRCLE = [_FILL, _FILL, _next(2, 200), _next(0), _next(0), _next(0, 6), _next(0), _next(0), _next(0),
               _next(0, 30),
               _next(2, 30), _next(0), _next(0), _next(0, 6), _next(0), _next(0), _next(0),
               _next(3, 30), _next(0), _next(0), _next(0), _next(0, 6), _next(0), _next(0), _next(0)]


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@example(labours=["full", "none"], history=FULL_CIRCLE)
@given(labours=MEMBERS, history=HISTORY)
def random_history_stays_consistent_and_replayable(labours, history):
    app = CaseManagement()
    members = [person(i + 1, date(1970 + i, 1, 2), labour=lab) for i, lab in enumerate(labours)]
    run(app, [register(members=members), *inclusion_path(size=len(members)),
              *measure("H1", "M-first", START, START)])
    live = app.get_household("H1")
    day = START
    for n, (gap, action) in enumerate(history):
        day += timedelta(days=gap)
        if action[0] == "advance":  # several next steps, six days apart (a notice takes five)
            for i in range(action[1]):
                day += timedelta(days=6)
                for command in expand(("next", (n + i) % 10), day, live, n * 100 + i):
                    decide(app, live, command)
            continue
        for command in expand(action, day, live, n):
            decide(app, live, command)
    reloaded = app.get_household("H1")
    assert reloaded is not live
    assert public_state(reloaded) == public_state(live)
    app.close()


def test_random_assistance_and_exit_histories_keep_the_case_consistent_and_replayable():
    SEEN.clear()
    random_history_stays_consistent_and_replayable()
    # the histories are not vacuous: they reach exits, rollbacks, re-inclusions and every exit refusal
    for outcome in ("exit_nominated", "risk_eliminated", "elimination_rolled_back", "entered_system",
                    "min_assistance_months", "exit_income_assessment_missing", "exit_income_below_line",
                    "open_guarantee", "household_without_labour", "post_elimination_assessment",
                    "measure_does_not_fit"):
        assert SEEN[outcome] > 0, (outcome, sorted(SEEN.items()))
