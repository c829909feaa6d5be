"""The command path refuses what it must before anything is stored: acts dated after the day they are
recorded (+1 for time zones), extreme money (one line's validation_error, the other lines going in), and an
idempotency key reused for other content (`conflict`, after authorisation)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from freezegun import freeze_time

from adapters.integration.intake import parse_line
from casecore.policy import PolicyBook
from tests.builders import cmd, inclusion_path, register, run

OUTSIDER = {"id": "v-other", "name": "外村干部", "role": "village", "unit": "522631102001"}


def _through_publicity(app, hid: str = "H1", start: date = date(2023, 3, 2)) -> None:
    run(app, [register(hid), *inclusion_path(hid, start)[:5]])


def test_close_publicity_dated_five_days_after_its_recording_day_is_refused(app):
    _through_publicity(app)
    with freeze_time("2023-03-06 10:00:00"):
        outcome = app.handle(cmd("close_publicity", date(2023, 3, 11), household_id="H1"))
    assert not outcome.ok
    assert outcome.error.code == "validation_error"
    assert outcome.error.message.startswith("on:")
    assert "2023-03-06" in outcome.error.message


def test_an_act_dated_the_day_after_its_utc_recording_day_is_accepted(app):
    _through_publicity(app)
    # 23:30 UTC on 9 March is 07:30 on 10 March in China: the cadre's date is one day ahead of the clock
    with freeze_time("2023-03-09 23:30:00"):
        # the notice opened on 5 March: five full days have passed on 10 March
        outcome = app.handle(cmd("close_publicity", date(2023, 3, 10), household_id="H1"))
    assert outcome.ok, outcome.error and outcome.error.as_dict()


def test_the_injected_recording_clock_bounds_the_business_date(app):
    app.recording_clock = lambda c: datetime(2023, 2, 1, 9, tzinfo=UTC)
    outcome = app.handle(register("H1", on=date(2023, 3, 1)))
    assert not outcome.ok and outcome.error.code == "validation_error"
    app.recording_clock = lambda c: datetime.combine(c.on, datetime.min.time(), UTC) + timedelta(hours=9)
    assert app.handle(register("H1", on=date(2023, 3, 1))).ok


def test_a_batch_with_money_of_1e26_refuses_that_line_only_and_stores_the_others(app):
    run(app, [register("H1"), register("H2")])
    good = ('{"command":"assess_income","household_id":"%s","on":"2023-03-10","actor":%s,'
            '"period_start":"2022-03-01","period_end":"2023-02-28","net_income":"%s"}')
    actor = '{"id":"v-cadre-1","role":"village","unit":"522631101001"}'
    lines = [good % ("H1", actor, "8000"), good % ("H1", actor, "1e26"), good % ("H2", actor, "1E+30"),
             good % ("H2", actor, "9999999999.99")]
    outcomes = list(app.handle_many([parse_line(t) for t in lines]))
    assert [o.ok for o in outcomes] == [True, False, False, True]
    assert {o.error.code for o in outcomes if not o.ok} == {"validation_error"}
    assert app.get_household("H2").incomes[-1]["net_income"] == Decimal("9999999999.99")


def test_the_same_command_with_the_same_key_is_a_duplicate(app):
    run(app, [register("H1", command_id="reg-1")])
    again = app.handle(register("H1", command_id="reg-1"))
    assert again.ok and again.duplicate and again.events == []


def test_the_same_command_with_a_default_spelled_out_is_still_a_duplicate(app):
    run(app, [register("H1", command_id="reg-1")])
    again = app.handle(register("H1", command_id="reg-1", relocated=False, key_county=False, evidence=[]))
    assert again.ok and again.duplicate


def test_a_key_reused_for_other_content_is_a_conflict_and_stores_nothing(app):
    run(app, [register("H1"), cmd("record_lead", date(2023, 3, 2), household_id="H1", lead_id="L1",
                                  source="cadre_screening", command_id="k-1")])
    version = app.get_household("H1").version
    other = app.handle(cmd("record_lead", date(2023, 3, 2), household_id="H1", lead_id="L2",
                           source="cadre_screening", command_id="k-1"))
    assert not other.ok and other.error.code == "conflict"
    assert "k-1" in other.error.message
    assert app.get_household("H1").version == version
    assert "L2" not in app.get_household("H1").leads


def test_a_known_key_sent_by_someone_without_authority_is_refused_as_not_authorised(app):
    run(app, [register("H1"), cmd("record_lead", date(2023, 3, 2), household_id="H1", lead_id="L1",
                                  source="cadre_screening", command_id="k-1")])
    same_from_outsider = app.handle(cmd("record_lead", date(2023, 3, 2), actor=OUTSIDER, household_id="H1",
                                        lead_id="L1", source="cadre_screening", command_id="k-1"))
    assert not same_from_outsider.ok and same_from_outsider.error.code == "not_authorised"
    unknown_from_outsider = app.handle(cmd("record_lead", date(2023, 3, 2), actor=OUTSIDER, household_id="H1",
                                           lead_id="L9", source="cadre_screening", command_id="k-unknown"))
    assert unknown_from_outsider.error.code == same_from_outsider.error.code
    assert unknown_from_outsider.error.message == same_from_outsider.error.message


def test_the_bulk_path_tells_a_duplicate_from_a_reused_key_within_one_batch(app):
    run(app, [register("H1")])
    lead = {"household_id": "H1", "source": "cadre_screening", "command_id": "k-1"}
    outcomes = list(app.handle_many([cmd("record_lead", date(2023, 3, 2), lead_id="L1", **lead),
                                     cmd("record_lead", date(2023, 3, 2), lead_id="L1", **lead),
                                     cmd("record_lead", date(2023, 3, 2), lead_id="L2", **lead)]))
    assert [(o.ok, o.duplicate) for o in outcomes[:2]] == [(True, False), (True, True)]
    assert outcomes[2].error.code == "conflict"


def test_a_key_stored_before_digests_were_kept_still_answers_duplicate(app):
    """Events written before digests were kept (and imported facts) carry no digest: the key alone decides."""
    run(app, [register("H1", command_id="reg-1")])
    h = app.get_household("H1")
    h.command_ids["reg-1"] = None
    assert app._decide(register("H1", command_id="reg-1"), h)[1].duplicate



def _with_future_dated_days(app, days: int) -> None:
    """The application's policies with `procedure.future_dated_days` set to `days` in every version."""
    app.policies = PolicyBook([p.model_copy(update={"procedure": p.procedure.model_copy(
        update={"future_dated_days": days})}) for p in app.policies.policies])


def test_how_far_an_act_may_be_dated_ahead_of_its_recording_is_the_policys_figure(app):
    """The engine and the inspector's future_dated_act read one figure: an act the engine accepts is not a
    finding, and one the policy allows is not refused."""
    _with_future_dated_days(app, 3)
    app.recording_clock = lambda c: datetime(2023, 2, 26, 9, tzinfo=UTC)
    outcome = app.handle(register("H1", on=date(2023, 3, 1)))
    assert outcome.ok, outcome.error and outcome.error.as_dict()

    _with_future_dated_days(app, 0)
    app.recording_clock = lambda c: datetime(2023, 3, 1, 9, tzinfo=UTC)
    refused = app.handle(register("H2", on=date(2023, 3, 2)))
    assert not refused.ok and refused.error.code == "validation_error"
    assert "0 天" in refused.error.message
