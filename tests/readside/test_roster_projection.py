"""The roster (监测对象名单) projection: its rows say what the household aggregate says after replay, a
rebuild gives the same tables as catching up batch by batch, and a household's row follows it through
inclusion, assistance, exit, rollback and re-inclusion."""

from __future__ import annotations

import tempfile
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.readside.readmodels import engine_for, store_of
from adapters.store.storage import bootstrap
from projections.roster import RosterProjection, metadata, monitored_roster, roster, roster_measures, roster_members
from projections.runner import ProjectionRunner
from tests.builders import cmd, exit_path, inclusion_path, measure, person, register, run
from tests.histories import Histories


def snapshot(engine) -> dict[str, list[tuple]]:
    """Every projection table's rows, in primary-key order."""
    out = {}
    with engine.connect() as conn:
        for t in metadata.sorted_tables:
            rows = conn.execute(sa.select(t).order_by(*t.primary_key.columns)).all()
            out[t.name] = [tuple(r) for r in rows]
    return out


def expected_row(h) -> dict:
    """What the roster must say about a household, read from the replayed aggregate."""
    latest = None
    for a in h.incomes:
        if latest is None or a["on"] >= latest["on"]:
            latest = a
    g = h.guarantees[-1] if h.guarantees else None
    cadre = h.cadre or {}
    return {
        "division_code": h.division_code, "household_type": h.household_type, "stage": h.stage,
        "category": h.category, "risk_types": list(h.risk_types), "open_procedure": h.procedure,
        "procedure_step": h.step, "procedure_started_on": h.procedure_started_on, "cycle": h.cycle,
        "household_size": len(h.current_members()), "has_labour": h.has_labour(),
        "cadre_id": cadre.get("id"), "cadre_name": cadre.get("name"), "cadre_assigned_on": cadre.get("assigned_on"),
        "included_on": h.included_on, "eliminated_on": h.eliminated_on, "exit_mode": h.exit_mode,
        "exit_nominated_on": h.exit_nominated_on, "rolled_back_on": h.rolled_back_on,
        "per_capita_income": latest and latest["per_capita_income"], "income_assessed_on": latest and latest["on"],
        "housing": g and g["housing"], "drinking_water_safe": g and g["drinking_water_safe"],
        "children_out_of_school": g and len(g["children_out_of_school"]),
        "leads": len(h.leads), "measures_planned": len(h.measures),
        "measures_implemented": sum(1 for m in h.measures.values() if m["implemented_on"] is not None),
        "measures_active": sum(1 for m in h.measures.values() if m["status"] == "implemented"),
        "version": h.version,
    }


def assert_agrees_with_aggregates(app, engine, household_ids) -> None:
    with engine.connect() as conn:
        rows = {r["household_id"]: dict(r) for r in conn.execute(sa.select(roster)).mappings()}
        members = conn.execute(sa.select(roster_members)).mappings().all()
        measures = conn.execute(sa.select(roster_measures)).mappings().all()
    assert set(rows) == set(household_ids)
    for hid in household_ids:
        h = app.get_household(hid)
        want = expected_row(h)
        assert {k: rows[hid][k] for k in want} == want, hid
        got_members = {m["person_id"]: (m["labour"], m["added_on"], m["removed_on"])
                       for m in members if m["household_id"] == hid}
        assert got_members == {p: (m["labour"], m.get("added_on"), m.get("removed_on")) for p, m in h.members.items()}
        got_measures = {m["measure_id"]: (m["measure_type"], list(m["addresses"]), m["planned_on"], m["implemented_on"],
                                          m["ended_on"], m["status"], m["cycle"])
                        for m in measures if m["household_id"] == hid}
        assert got_measures == {k: (m["measure_type"], m["addresses"], m["planned_on"], m["implemented_on"],
                                    m["ended_on"], m["status"], m["cycle"]) for k, m in h.measures.items()}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_a_rebuild_and_catching_up_in_random_batches_give_identical_tables_that_agree_with_the_aggregates(data):
    with tempfile.TemporaryDirectory() as tmp:
        app = bootstrap(str(Path(tmp) / "events.db"))
        engine = engine_for(store_of(app))
        try:
            runner = ProjectionRunner(app, engine, [RosterProjection()])
            p = runner.projections[0]
            hist = Histories(app, households=data.draw(st.integers(1, 4), label="households"))
            for _ in range(data.draw(st.integers(1, 60), label="events")):
                hist.step(data)
                if data.draw(st.integers(0, 4), label="save now") == 0:
                    hist.save()
                    if data.draw(st.booleans(), label="catch up now"):
                        runner.batch_size = data.draw(st.integers(1, 12), label="batch size")
                        runner.catch_up(p)
            hist.save()
            runner.batch_size = data.draw(st.integers(1, 12), label="last batch size")
            runner.catch_up(p)
            incremental = snapshot(engine)

            runner.batch_size = data.draw(st.integers(1, 50), label="rebuild batch size")
            if data.draw(st.booleans(), label="interrupt the rebuild"):
                runner.rebuild(p, stop_after_batches=data.draw(st.integers(1, 3), label="batches before"))
            runner.rebuild(p)
            assert snapshot(engine) == incremental
            assert_agrees_with_aggregates(app, engine, sorted(hist.aggregates))
        finally:
            engine.dispose()
            app.close()


# ---------------------------------------------------------------------- a household's row through its case


def roster_rows(app, **kw) -> dict[str, dict]:
    engine = engine_for(store_of(app))
    try:
        runner = ProjectionRunner(app, engine, [RosterProjection()], batch_size=5)
        runner.catch_up(runner.projections[0])
        with engine.connect() as conn:
            return {r["household_id"]: r for r in monitored_roster(conn, **kw)}
    finally:
        engine.dispose()


CADRE = {"id": "c-01", "name": "王帮扶", "unit": "522631101000"}


def test_an_included_household_is_on_the_roster_with_its_category_risks_income_and_inclusion_date(app):
    run(app, [register("H1", household_type="poverty_alleviated"), register("H2"),
              *inclusion_path("H1", per_capita_income=5200, category="unstable_alleviated",
                              risk_types=("illness", "schooling"))])
    rows = roster_rows(app)
    assert list(rows) == ["H1"]  # H2 is registered but not monitored
    r = rows["H1"]
    assert (r["stage"], r["category"]) == ("monitored", "unstable_alleviated")
    assert r["risk_types"] == ["illness", "schooling"]
    assert r["included_on"] == date(2023, 3, 13)
    assert r["per_capita_income"] == Decimal("5200.00")
    assert (r["household_size"], r["has_labour"]) == (2, True)
    assert (r["county_code"], r["township_code"]) == ("522631", "522631101")
    assert r["cadre_name"] is None and r["measures"] == []
    everyone = roster_rows(app, all_stages=True)
    assert everyone["H2"]["stage"] == "not_monitored"


def test_a_household_in_inclusion_is_kept_with_its_stage_but_not_listed(app):
    run(app, [register("H1"), *inclusion_path("H1")[:5]])  # up to the public notice
    assert roster_rows(app) == {}
    r = roster_rows(app, all_stages=True)["H1"]
    assert (r["stage"], r["open_procedure"], r["procedure_step"]) == ("in_inclusion", "inclusion", "in_publicity")


def test_cadre_and_measures_show_on_the_roster_as_they_are_planned_implemented_and_ended(app):
    run(app, [register("H1"), *inclusion_path("H1", risk_types=("illness", "housing")),
              cmd("assign_cadre", date(2023, 3, 14), household_id="H1", cadre=CADRE),
              *measure("H1", "M1", date(2023, 3, 15), date(2023, 3, 20)),
              *measure("H1", "M2", date(2023, 3, 16), measure_type="housing", addresses=("housing",)),
              *measure("H1", "M3", date(2023, 3, 16), date(2023, 4, 1), measure_type="social"),
              cmd("end_measure", date(2023, 6, 30), household_id="H1", measure_id="M3")])
    r = roster_rows(app)["H1"]
    assert (r["cadre_id"], r["cadre_name"], r["cadre_unit"], r["cadre_assigned_on"]) == (
        "c-01", "王帮扶", "522631101000", date(2023, 3, 14))
    assert (r["measures_planned"], r["measures_implemented"], r["measures_active"]) == (3, 2, 1)
    assert [(m["measure_id"], m["measure_type"], m["status"], m["implemented_on"], m["ended_on"])
            for m in r["measures"]] == [
        ("M1", "health", "implemented", date(2023, 3, 20), None),
        ("M2", "housing", "planned", None, None),
        ("M3", "social", "ended", date(2023, 4, 1), date(2023, 6, 30)),
    ]
    assert r["measures"][1]["addresses"] == ["housing"] and r["measures"][0]["department"] == "县医保局"


def test_an_exit_takes_the_household_off_the_roster_and_a_rollback_puts_it_back(app):
    run(app, [register("H1"), *inclusion_path("H1"), *measure("H1", "M1", date(2023, 3, 15), date(2023, 3, 20)),
              *exit_path("H1", date(2023, 10, 9))[:3]])
    r = roster_rows(app)["H1"]
    assert (r["stage"], r["open_procedure"], r["exit_nominated_on"]) == ("in_exit", "exit", date(2023, 10, 9))

    run(app, exit_path("H1", date(2023, 10, 9))[3:])
    assert roster_rows(app) == {}
    r = roster_rows(app, all_stages=True)["H1"]
    assert (r["stage"], r["eliminated_on"], r["exit_mode"]) == ("risk_eliminated", date(2023, 10, 20), "assisted")
    assert r["per_capita_income"] == Decimal("8000.00") and r["income_assessed_on"] == date(2023, 10, 19)

    run(app, [cmd("rollback_elimination", date(2023, 11, 1), household_id="H1", reason="核查发现收入不实")])
    r = roster_rows(app)["H1"]
    assert (r["stage"], r["eliminated_on"], r["rolled_back_on"], r["included_on"]) == (
        "monitored", None, date(2023, 11, 1), date(2023, 3, 13))


def test_a_household_included_again_after_elimination_starts_a_new_cycle_and_keeps_its_measures(app):
    later = date(2024, 3, 4)
    again = inclusion_path("H1", start=later, risk_types=("accident",), per_capita_income=6000)
    again[0] = cmd("record_lead", later, household_id="H1", lead_id="H1-L2", source="department_warning",
                   risk_types=["accident"], detail="意外事故")
    again[2] = cmd("verify_lead", later + timedelta(days=1), household_id="H1", lead_id="H1-L2", finding="meets")
    run(app, [register("H1"), *inclusion_path("H1"), *measure("H1", "M1", date(2023, 3, 15), date(2023, 3, 20)),
              *exit_path("H1", date(2023, 10, 9)), *again,
              *measure("H1", "M2", later + timedelta(days=20), measure_type="health", addresses=("accident",))])
    r = roster_rows(app)["H1"]
    assert (r["stage"], r["cycle"], r["included_on"], r["eliminated_on"]) == ("monitored", 2, date(2024, 3, 15), None)
    assert r["risk_types"] == ["accident"] and r["leads"] == 2
    assert [(m["measure_id"], m["cycle"]) for m in r["measures"]] == [("M1", 1), ("M2", 2)]


def test_member_changes_update_household_size_and_labour(app):
    elder = person(3, date(1940, 2, 3), labour="none", relation="父亲")
    run(app, [register("H1", members=[person(1, labour="weak"), elder]), *inclusion_path("H1"),
              cmd("add_member", date(2023, 4, 1), household_id="H1", member=person(4, date(2023, 3, 30), labour="none",
                                                                               relation="孙子"), reason="birth")])
    r = roster_rows(app)["H1"]
    assert (r["household_size"], r["has_labour"]) == (3, True)

    run(app, [cmd("remove_member", date(2023, 5, 1), household_id="H1", person_id=person(1, labour="weak")["person_id"],
                  reason="death")])
    r = roster_rows(app)["H1"]
    assert (r["household_size"], r["has_labour"]) == (2, False)  # 整户无劳动力


def elsewhere(commands, village: str):
    """The same commands done by the units of another village and its township."""
    township = village[:9] + "000"
    out = []
    for c in commands:
        unit = {"village": village, "township": township}.get(c.actor.role.value, c.actor.unit)
        out.append(c.model_copy(update={"actor": c.actor.model_copy(update={"unit": unit})}))
    return out


def test_the_roster_lists_only_households_under_a_division_prefix(app):
    other_village = "522631102003"
    h9 = register("H9", members=[person(7)]).model_copy(update={"division_code": other_village})
    run(app, [register("H1"), *inclusion_path("H1"), *elsewhere([h9, *inclusion_path("H9", size=1)], other_village)])
    assert set(roster_rows(app)) == {"H1", "H9"}
    assert set(roster_rows(app, division_prefix="522631101")) == {"H1"}
    assert set(roster_rows(app, division_prefix="522631102003")) == {"H9"}
    assert roster_rows(app, division_prefix="5201") == {}
