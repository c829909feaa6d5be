"""The case-facts projection: cycles from native leads and from imported decisions, the person index, and a
rebuild that equals an incremental catch-up."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from adapters.readside.readmodels import read_models
from casecore.household import Household
from projections import casefacts as cf
from projections.casefacts import CaseFactsProjection, person_households
from tests.builders import cmd, exit_path, inclusion_path, measure, person, register, run
from tests.readside.test_inspect_rules import eliminated, imported

TABLES = (cf.households, cf.members, cf.cycles, cf.eliminations, cf.risks, cf.measures, cf.incomes, cf.guarantees,
          cf.leads, cf.publicity, cf.backdating, cf.signatures, cf.problems)


def snapshot(rm) -> dict[str, list[tuple]]:
    with rm.engine.connect() as conn:
        return {t.name: sorted(tuple(str(v) for v in r) for r in conn.execute(sa.select(t))) for t in TABLES}


def history(app) -> None:
    run(app, [register("H1"), *inclusion_path("H1"), *measure("H1", "M1", date(2023, 3, 20), date(2023, 3, 21)),
              *exit_path("H1", date(2023, 10, 9), mode="natural"),
              cmd("record_lead", date(2024, 1, 5), household_id="H1", lead_id="L2", source="department_warning",
                  risk_types=["disability"]),
              cmd("verify_lead", date(2024, 1, 6), household_id="H1", lead_id="L2", finding="not_meets")])
    imported(app, "N1", **eliminated("202209"))
    imported(app, "N2")


def test_cycles_come_from_native_leads_and_from_imported_decisions(sqlite_app):
    history(sqlite_app)
    with read_models(sqlite_app, [CaseFactsProjection()]) as rm:
        rm.catch_up()
        with rm.engine.connect() as conn:
            rows = {(r.household_id, r.cycle): r for r in conn.execute(sa.select(cf.cycles))}
    assert sorted(rows) == [("H1", 1), ("H1", 2), ("N1", 1), ("N2", 1)]
    first = rows[("H1", 1)]
    assert (first.first_lead_on, first.included_on, first.status) == (date(2023, 3, 2), date(2023, 3, 13),
                                                                     "eliminated")
    assert (first.nominated_on, first.exit_mode, first.category) == (date(2023, 10, 9), "natural", "marginal")
    assert (rows[("H1", 2)].status, rows[("H1", 2)].closed_on) == ("closed", date(2024, 1, 6))
    n1 = rows[("N1", 1)]
    assert (n1.first_lead_on, n1.included_on, n1.included_precision, n1.eliminated_on) == (
        None, date(2022, 3, 1), "month", date(2022, 9, 1))
    assert n1.origin == "national_export:t.xlsx" and n1.risk_types == ["illness"]


def test_the_person_index_finds_the_household_a_person_belongs_to(sqlite_app):
    history(sqlite_app)
    pid = person(1)["person_id"]
    with read_models(sqlite_app, [CaseFactsProjection()]) as rm:
        rm.catch_up()
        with rm.engine.connect() as conn:
            found = person_households(conn, [pid.lower(), "110101199001011237"])
    # person(1) is a member of H1 (native) and the export's people are numbered differently
    assert found[pid] == "H1" and "110101199001011237" not in found


def test_a_rebuild_gives_the_same_case_facts_as_an_event_by_event_catch_up(app):
    history(app)
    with read_models(app, [CaseFactsProjection()], batch_size=1) as rm:
        rm.catch_up()
        incremental = snapshot(rm)
    with read_models(app, [CaseFactsProjection()], batch_size=1000) as rm:
        rm.runner.rebuild(rm.projection("casefacts"))
        rebuilt = snapshot(rm)
    assert incremental == rebuilt
    assert len(rebuilt["cf_cycles"]) == 4 and rebuilt["cf_incomes"]


def test_household_events_without_a_registration_are_skipped(sqlite_app):
    h = Household._create(Household.Registered, id="household/X1", division_code="522631101001",
                          household_type="general", relocated=False, resettlement_site=None, key_county=False,
                          members=[], on=date(2023, 1, 1), actor={"id": "a"})
    sqlite_app.save(h)
    with read_models(sqlite_app, [CaseFactsProjection()]) as rm:
        rm.catch_up()
        with rm.engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(cf.households)).scalar() == 1
