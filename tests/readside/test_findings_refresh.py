"""A refresh of the stored findings recomputes only the households whose events arrived since the stored run,
and stores what a full recomputation stores, row for row and in the same order; a new policy recomputes
everything."""

from __future__ import annotations

import random
from datetime import date

import sqlalchemy as sa

from adapters.demo import DemoContext, stages
from adapters.readside.readmodels import read_models
from projections import casefacts as cf
from projections import findings_store
from projections.casefacts import CaseFactsProjection
from tests.builders import cmd, inclusion_path, register, run

AS_OF = date(2024, 6, 30)


def stored_rows(conn) -> list[tuple]:
    s = findings_store.stored
    return [tuple(r) for r in conn.execute(
        sa.select(s.c.seq, s.c.division_code, s.c.rule, s.c.household_id, s.c.label, s.c.doc)
        .where(s.c.as_of == AS_OF).order_by(s.c.seq))]


def refresh(app, rm):
    projection = rm.runner.get("casefacts")
    with rm.engine.begin() as conn:
        findings_store.create(conn)
        return findings_store.refresh(
            conn, app.policies, AS_OF, rm.runner.position(projection), rm.runner.max_position(),
            lambda after, up_to: findings_store.streams_between(app.recorder.select_notifications, after, up_to))


def new_facts_for_a_few_households(app, conn) -> set[str]:
    """A lead and a measure for two monitored households of the county, and a new household included long
    before the as-of date with nobody responsible and nothing done."""
    c = cf.cycles
    monitored = conn.execute(sa.select(c.c.household_id, c.c.division_code)
                             .where(c.c.included_on.is_not(None), c.c.eliminated_on.is_(None))
                             .order_by(c.c.household_id).limit(2)).all()
    assert len(monitored) == 2
    commands = []
    for n, (hid, division) in enumerate(monitored):
        actor = {"id": f"v-refresh-{n}", "name": "复核村干部", "role": "village", "unit": division}
        commands += [
            cmd("record_lead", date(2024, 3, 4), actor=actor, household_id=hid, lead_id=f"{hid}-R{n}",
                source="cadre_screening", risk_types=["housing"], detail="复核发现"),
            cmd("plan_measure", date(2024, 3, 5), actor=actor, household_id=hid, measure_id=f"{hid}-RM{n}",
                measure_type="housing", addresses=["housing"], department="县住建局", responsible="李工"),
            cmd("implement_measure", date(2024, 3, 20), actor=actor, household_id=hid, measure_id=f"{hid}-RM{n}"),
        ]
    run(app, [*commands, register("LATE-1", on=date(2023, 1, 5)),
              *inclusion_path("LATE-1", start=date(2023, 1, 9))])
    return {hid for hid, _ in monitored} | {"LATE-1"}


def test_a_refresh_recomputes_only_the_changed_households_and_equals_a_full_run(app, tmp_path, monkeypatch):
    ctx = DemoContext(app=app, rng=random.Random(3), households=30, output_dir=tmp_path / "out")
    for stage in stages():
        stage.run(ctx)
    with read_models(app, [CaseFactsProjection()]) as rm:
        rm.catch_up()
        first = refresh(app, rm)
        assert first is not None and first.count > 0
        assert refresh(app, rm) is None   # nothing new: one query, nothing recomputed

        with rm.engine.connect() as conn:
            changed = new_facts_for_a_few_households(app, conn)
        rm.catch_up()
        inspected: list = []
        real = findings_store.Inspector

        def spy(conn, policies, as_of, division=None, households=None):
            inspected.append(households)
            return real(conn, policies, as_of, division, households)

        monkeypatch.setattr(findings_store, "Inspector", spy)
        again = refresh(app, rm)
        assert again is not None and inspected == [sorted(changed)]
        with rm.engine.connect() as conn:
            incremental = stored_rows(conn)
        with rm.engine.begin() as conn:
            full = findings_store.store_run(conn, app.policies, AS_OF, again.casefacts_position, again.head)
            recomputed = stored_rows(conn)
    assert incremental == recomputed
    assert again.count == full.count == len(recomputed)
    assert {r[3] for r in recomputed} & changed   # the changed households do have findings


def test_a_refresh_under_other_policy_files_recomputes_every_household(app, monkeypatch):
    run(app, [register("H1", on=date(2023, 1, 5)), *inclusion_path("H1", start=date(2023, 1, 9))])
    with read_models(app, [CaseFactsProjection()]) as rm:
        rm.catch_up()
        assert refresh(app, rm) is not None
        run(app, [register("H2", on=date(2023, 2, 5))])
        rm.catch_up()
        monkeypatch.setattr(findings_store, "policy_digest", lambda policies: "another policy")
        inspected: list = []
        real = findings_store.Inspector

        def spy(conn, policies, as_of, division=None, households=None):
            inspected.append(households)
            return real(conn, policies, as_of, division, households)

        monkeypatch.setattr(findings_store, "Inspector", spy)
        assert refresh(app, rm) is not None
        assert inspected == [None]
