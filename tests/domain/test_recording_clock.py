"""Two clocks: `on` is what the cadre states; `recorded_at` is when the system stored it — by default the
system's clock, or an injected recording clock (a simulated county, a migration of dated paper records)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from freezegun import freeze_time
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.builders import register


def stored_times(app, stream: str) -> list[datetime]:
    return [e.timestamp for e in app.events.get(stream)]


def test_events_are_recorded_at_the_system_time_by_default(app):
    with freeze_time("2026-11-30 08:15:00"):
        assert app.handle(register("H1", on=date(2023, 3, 1))).ok
    assert stored_times(app, "household/H1") == [datetime(2026, 11, 30, 8, 15, tzinfo=UTC)]


def test_an_injected_recording_clock_stamps_the_events_of_each_command(app):
    app.recording_clock = lambda cmd: datetime.combine(cmd.on, datetime.min.time(), UTC) + timedelta(hours=9)
    outcomes = list(app.handle_many([register("H1", on=date(2023, 3, 1)), register("H2", on=date(2023, 3, 2))]))
    assert all(o.ok for o in outcomes)
    assert stored_times(app, "household/H1") == [datetime(2023, 3, 1, 9, tzinfo=UTC)]
    assert stored_times(app, "household/H2") == [datetime(2023, 3, 2, 9, tzinfo=UTC)]
    app.recording_clock = None
    with freeze_time("2026-11-30 08:15:00"):
        assert app.handle(register("H3", on=date(2023, 3, 3))).ok
    assert stored_times(app, "household/H3") == [datetime(2026, 11, 30, 8, 15, tzinfo=UTC)]


def test_the_demo_county_records_acts_on_their_business_date_and_a_few_entries_weeks_late(sqlite_app, tmp_path):
    import random

    from adapters.demo import DemoContext
    from tests.builders import TOWNSHIP, cmd

    ctx = DemoContext(app=sqlite_app, rng=random.Random(1), households=1, output_dir=tmp_path, late_entry_every=1)
    on = date(2023, 3, 13)
    entry = cmd("enter_system", on, TOWNSHIP, household_id="H1")
    other = cmd("sign_application", on, household_id="H1")
    limit = sqlite_app.policies.on(on).procedure.backdated_entry_days
    assert ctx.recorded_at(other).date() == on
    assert (ctx.recorded_at(entry).date() - on).days > limit
    assert ctx.recorded_at(entry) == ctx.recorded_at(entry)  # deterministic: the same command, the same time


def _hash_rows(app, stream: str) -> list[str]:
    from tests.store.test_audit import Store

    store = Store(app)
    with store.sql() as q:
        return [r[0] for r in q(f"SELECT recorded_at FROM {store.hashes} WHERE originator_id = ? "
                                "ORDER BY originator_version", (stream,))]


def test_a_clock_set_back_never_records_a_stream_backwards(app):
    from tests.builders import cmd

    with freeze_time("2026-11-30 08:15:00"):
        assert app.handle(register("H1", on=date(2023, 3, 1))).ok
    with freeze_time("2026-11-29 08:00:00"):   # another server, its clock a day behind
        assert app.handle(cmd("record_lead", date(2023, 3, 2), household_id="H1", lead_id="L1",
                              source="self_declaration", risk_types=["illness"], detail="申报")).ok
    with freeze_time("2026-12-01 09:00:00"):
        assert app.handle(cmd("record_lead", date(2023, 3, 3), household_id="H1", lead_id="L2",
                              source="self_declaration", risk_types=["illness"], detail="申报")).ok
    first = datetime(2026, 11, 30, 8, 15, tzinfo=UTC)
    assert stored_times(app, "household/H1") == [first, first, datetime(2026, 12, 1, 9, tzinfo=UTC)]


def test_an_event_has_one_recorded_time_in_the_event_the_chain_the_checkpoint_replay_and_the_feed(app):
    from adapters.integration.feed import read_events, to_cloudevent
    from adapters.store.audit import audit
    from projections.queries.replay import replay

    app.recording_clock = lambda cmd: datetime.combine(cmd.on, datetime.min.time(), UTC) + timedelta(hours=9)
    with freeze_time("2026-11-30 08:15:00"):
        assert all(o.ok for o in app.handle_many([register("H1", on=date(2023, 3, 1)),
                                                  register("H2", on=date(2023, 3, 2))]))
    times = stored_times(app, "household/H1") + stored_times(app, "household/H2")
    assert times == [datetime(2023, 3, 1, 9, tzinfo=UTC), datetime(2023, 3, 2, 9, tzinfo=UTC)]
    chained = _hash_rows(app, "household/H1") + _hash_rows(app, "household/H2")
    assert [datetime.fromisoformat(t) for t in chained] == times
    report = audit(app.recorder)
    assert report.ok and sorted(report.days) == ["2023-03-01", "2023-03-02"]
    assert [e.recorded_at for e in replay(app, "household/H1").entries] == times[:1]
    feed = [to_cloudevent(e, position, "urn:casecore:test") for position, e in read_events(app)]
    assert sorted(datetime.fromisoformat(e["time"]) for e in feed) == times


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(clock=st.lists(st.integers(-3000, 3000), min_size=1, max_size=8), bulk=st.booleans())
def test_whatever_the_clock_does_a_case_is_recorded_at_the_latest_time_seen_so_far(clock, bulk):
    """Each command is typed in at a clock that may jump back (minutes from a start): the case's recorded
    times are the running maximum of those clocks, and the chain holds the same times."""
    import tempfile
    from pathlib import Path

    from adapters.store.audit import audit
    from adapters.store.storage import bootstrap
    from tests.builders import cmd

    start = datetime(2026, 3, 1, 8, tzinfo=UTC)
    moments = [start] + [start + timedelta(minutes=m) for m in clock]
    commands = [register("H1", on=date(2023, 3, 1))] + [
        cmd("record_lead", date(2023, 3, 2), household_id="H1", lead_id=f"L{i}", source="self_declaration",
            risk_types=["illness"], detail="申报") for i in range(len(clock))]
    with tempfile.TemporaryDirectory() as tmp:
        app = bootstrap(str(Path(tmp) / "casecore.db"))
        try:
            if bulk:
                app.recording_clock = lambda c: moments[0 if c.command == "register_household" else
                                                         1 + int(c.lead_id[1:])]
                assert all(o.ok for o in app.handle_many(commands, batch_size=3))
            else:
                for moment, command in zip(moments, commands, strict=True):
                    with freeze_time(moment):
                        assert app.handle(command).ok
            expected = [max(moments[: i + 1]) for i in range(len(moments))]
            assert stored_times(app, "household/H1") == expected
            report = audit(app.recorder)
            assert report.ok and sorted(report.days) == sorted({m.date().isoformat() for m in expected})
        finally:
            app.close()
