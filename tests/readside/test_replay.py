"""The auditor's replay: a case's history with both clocks, on a history with back-dated entries."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import orjson
import pytest
from freezegun import freeze_time
from typer.testing import CliRunner

from adapters.cli import app as cli
from casecore.errors import NotFound
from casecore.events import EVENT_TYPES
from casecore.household import public_state
from casecore.labels import EVENT_LABELS
from projections.queries.replay import replay, stream_of
from tests.builders import TOWNSHIP, cmd, inclusion_path, register, run
from tests.problems import closed_path


def backdated_history(app) -> None:
    """H1: registered and lead recorded on time; the home visit of 03-03 and the income assessment were
    entered a week late (on 03-10); the rest of the inclusion on time from 03-11."""
    steps = inclusion_path("H1", start=date(2023, 3, 2))  # lead 03-02, income+visit 03-03, ...
    with freeze_time("2023-03-01 08:00:00"):
        run(app, [register("H1", on=date(2023, 3, 1))])
    with freeze_time("2023-03-02 08:00:00"):
        run(app, steps[:1])
    with freeze_time("2023-03-10 08:00:00"):
        run(app, steps[1:3])  # assess_income on 03-03, verify_lead on 03-03: recorded 7 days late
    with freeze_time("2023-03-11 08:00:00"):
        run(app, [cmd("sign_application", date(2023, 3, 11), household_id="H1")])


def test_the_replay_lists_every_event_with_both_clocks_actor_payload_and_stage_after(app):
    backdated_history(app)
    r = replay(app, "household/H1")
    assert [e.type for e in r.entries] == ["registered", "lead_recorded", "income_assessed", "lead_verified",
                                           "application_signed"]
    assert [e.label for e in r.entries] == ["建档", "线索登记", "收入核算", "入户核实", "农户申请及承诺授权"]
    assert [e.on for e in r.entries] == [date(2023, 3, 1), date(2023, 3, 2), date(2023, 3, 3), date(2023, 3, 3),
                                         date(2023, 3, 11)]
    assert [e.recorded_at.date() for e in r.entries] == [date(2023, 3, 1), date(2023, 3, 2), date(2023, 3, 10),
                                                         date(2023, 3, 10), date(2023, 3, 11)]
    assert [e.lag_days for e in r.entries] == [0, 0, 7, 7, 0]
    assert [e.after.get("step_label", e.after["stage_label"]) for e in r.entries] == [
        "未纳入监测", "线索已搜集", "线索已搜集", "入户核实符合", "已申请及承诺授权"]
    assert r.entries[1].after["stage_label"] == "识别中"
    assert r.entries[3].actor["id"] == "v-cadre-1" and r.entries[3].payload["finding"] == "meets"
    assert [e.position for e in r.entries] == sorted(e.position for e in r.entries)
    assert r.entries[-1].version == 5 and not r.excluded
    assert r.state == public_state(app.get_household("H1"))


def test_as_of_a_business_date_includes_the_entries_made_later_for_that_date(app):
    backdated_history(app)
    r = replay(app, "household/H1", as_of=date(2023, 3, 3))
    assert [e.type for e in r.entries] == ["registered", "lead_recorded", "income_assessed", "lead_verified"]
    assert r.after["step_label"] == "入户核实符合"
    assert len(r.state["income_assessments"]) == 1
    assert [(x.type, x.reason) for x in r.excluded] == [("application_signed", "业务日期 2023-03-11 晚于 2023-03-03")]


def test_recorded_before_shows_what_the_system_knew_then_whatever_date_the_entries_state(app):
    backdated_history(app)
    r = replay(app, "household/H1", recorded_before=datetime(2023, 3, 4, tzinfo=UTC))
    assert [e.type for e in r.entries] == ["registered", "lead_recorded"]
    assert r.after["step_label"] == "线索已搜集"
    assert r.state["income_assessments"] == []
    assert {x.type for x in r.excluded} == {"income_assessed", "lead_verified", "application_signed"}


def test_the_two_clocks_disagree_about_a_back_dated_visit(app):
    backdated_history(app)
    on_the_date = replay(app, "household/H1", as_of=date(2023, 3, 5))
    known_then = replay(app, "household/H1", recorded_before=datetime(2023, 3, 5, tzinfo=UTC))
    assert on_the_date.after["step_label"] == "入户核实符合"
    assert known_then.after["step_label"] == "线索已搜集"
    both = replay(app, "household/H1", as_of=date(2023, 3, 5), recorded_before=datetime(2023, 3, 10, 9, tzinfo=UTC))
    assert both.after["step_label"] == "入户核实符合"


def test_before_registration_the_household_did_not_exist(app):
    backdated_history(app)
    r = replay(app, "household/H1", as_of=date(2023, 2, 28))
    assert r.entries == [] and r.state is None and len(r.excluded) == 5


def test_a_problem_stream_replays_with_its_rectification_status(app):
    run(app, closed_path("P1", household_id=None))
    r = replay(app, stream_of("P1", problem=True))
    assert r.aggregate == "problem"
    assert r.entries[0].label == "问题登记" and r.entries[-1].label == "销号"
    assert r.state["status"] == app.get_problem("P1").status
    assert all("status_label" in e.after for e in r.entries)
    early = replay(app, "problem/P1", as_of=date(2022, 4, 11))
    assert [e.type for e in early.entries] == ["raised", "responsibility_assigned"]


def test_an_unknown_household_is_not_found(app):
    with pytest.raises(NotFound):
        replay(app, "household/NOPE")


def test_every_event_type_has_a_chinese_label():
    import casecore.household
    import casecore.problem  # noqa: F401 - registers the problem events

    missing = [f"{agg}.{name}" for agg, types in EVENT_TYPES.items() for name in types
               if f"{agg}.{name}" not in EVENT_LABELS]
    assert missing == []


def test_every_field_of_every_event_has_a_chinese_name():
    import dataclasses

    import casecore.household
    import casecore.problem  # noqa: F401 - registers the problem events
    from casecore.events import CaseEvent
    from casecore.labels import FIELD_LABELS

    common = {f.name for f in dataclasses.fields(CaseEvent)} | {"originator_topic"}
    missing = {f"{agg}.{name}.{f.name}" for agg, types in EVENT_TYPES.items() for name, cls in types.items()
               for f in dataclasses.fields(cls) if f.name not in common and f.name not in FIELD_LABELS}
    assert missing == set()


def test_the_replay_command_shows_fields_and_values_in_chinese_and_whole(sqlite_app, sqlite_url):
    from casecore.values import LeadSource

    backdated_history(sqlite_app)
    human = CliRunner().invoke(cli, ["replay", "H1", "--db", sqlite_url])
    assert human.exit_code == 0, human.output
    assert f"来源: {LeadSource.CADRE_SCREENING.label}" in human.stdout
    assert "家庭成员: " in human.stdout and "…" not in human.stdout
    assert "(村级)" in human.stdout
    for english in ("source=", "cadre_screening", "division_code", "(village)", "household_type", "general"):
        assert english not in human.stdout, english


def test_the_replay_command_prints_chinese_labels_and_json(sqlite_app, sqlite_url):
    backdated_history(sqlite_app)
    runner = CliRunner()
    human = runner.invoke(cli, ["replay", "H1", "--db", sqlite_url, "--as-of", "2023-03-03"])
    assert human.exit_code == 0, human.output
    assert "入户核实" in human.stdout and "识别中" in human.stdout and "晚 7 天记录" in human.stdout
    assert "未计入的事件" in human.stdout
    as_json = runner.invoke(cli, ["replay", "H1", "--db", sqlite_url, "--json",
                                  "--recorded-before", "2023-03-04T08:00:00+08:00"])
    assert as_json.exit_code == 0, as_json.output
    data = orjson.loads(as_json.stdout)
    assert [e["type"] for e in data["entries"]] == ["registered", "lead_recorded"]
    assert data["recorded_before"] == "2023-03-04T08:00:00+08:00"
    missing = runner.invoke(cli, ["replay", "H9", "--db", sqlite_url])
    assert missing.exit_code == 1
    wrong = runner.invoke(cli, ["replay", "H1", "--db", sqlite_url, "--as-of", "03/03/2023"])
    assert wrong.exit_code == 2


def test_a_replay_without_cuts_ends_where_the_repository_stands(app):
    run(app, [register("H1"), *inclusion_path("H1"),
              cmd("assign_cadre", date(2023, 3, 14), household_id="H1",
                  cadre={"id": "c1", "name": "帮扶干部", "unit": TOWNSHIP["unit"]})])
    r = replay(app, "household/H1", recorded_before=datetime.now(UTC) + timedelta(days=1))
    assert r.state == public_state(app.get_household("H1")) and r.after["stage_label"] == "监测中"
