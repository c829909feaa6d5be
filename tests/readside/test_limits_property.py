"""Property: whatever the contract accepts — text at every length limit, every allowed character class (CJK,
symbols, C1 controls, newlines and tabs in free text), money at the edges of its range, dates at the edges of
theirs — is stored, caught up and rebuilt by every projection on both stores, and comes out unchanged."""

from __future__ import annotations

import itertools
from datetime import date
from decimal import Decimal

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.readside.readmodels import read_models
from casecore import limits as lim
from casecore.commands import parse_command
from projections import casefacts, ledger, roster, timeline
from tests.builders import VILLAGE_CODE, cmd, inclusion_path, person, register, run

#: every character short text may hold: no C0 control, no DEL, no lone surrogate
SHORT = st.characters(min_codepoint=0x20, blacklist_categories=("Cs",), blacklist_characters="\x7f")
FREE = st.one_of(SHORT, st.sampled_from("\n\t"))
CJK = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)


def text(limit: int, alphabet=SHORT) -> st.SearchStrategy[str]:
    """Text of exactly `limit` characters (a short random seed repeated) or a short one."""
    seed = st.text(st.one_of(alphabet, CJK), min_size=1, max_size=12)
    full = seed.map(lambda s: (s * limit)[:limit])
    return st.one_of(full, full, seed.map(lambda s: s[:limit]))


def money(low: Decimal) -> st.SearchStrategy[Decimal]:
    top = lim.MONEY_BOUND - Decimal("0.01")
    return st.one_of(st.sampled_from([top, low, Decimal(0), Decimal("0.01")]),
                     st.decimals(min_value=low, max_value=top, places=2))


COUNTER = itertools.count(1)


@st.composite
def histories(draw) -> dict:
    n = next(COUNTER)
    prefix = f"{n}-"
    return {
        # the builders' inclusion path names its lead `<hid>-L1`
        "hid": prefix + draw(text(lim.ID_MAX - len(prefix) - 3)),
        "pid": prefix + draw(text(lim.ID_MAX - len(prefix))),
        "command_id": draw(text(lim.COMMAND_ID_MAX)),
        "actor": {"id": draw(text(lim.ID_MAX)), "name": draw(text(lim.NAME_MAX)), "role": "village",
                  "unit": VILLAGE_CODE},
        # a unit of digits is an area with a jurisdiction; these are departments
        "department": {"id": draw(text(lim.ID_MAX)), "name": draw(text(lim.NAME_MAX)), "role": "department",
                       "unit": "部门" + draw(text(lim.UNIT_MAX - 2))},
        "inspector": {"id": draw(text(lim.ID_MAX)), "name": draw(text(lim.NAME_MAX)), "role": "inspector",
                      "unit": "督查" + draw(text(lim.UNIT_MAX - 2))},
        "names": [draw(text(lim.NAME_MAX)) for _ in range(2)],
        "relation": draw(text(lim.RELATION_MAX)),
        "site": draw(text(lim.SITE_MAX)),
        "note": draw(text(lim.FREE_TEXT_MAX, FREE)),
        "detail": draw(text(lim.FREE_TEXT_MAX, FREE)),
        "evidence": [draw(text(lim.EVIDENCE_MAX)) for _ in range(draw(st.integers(1, 3)))],
        "lead_id": draw(text(lim.ID_MAX)),
        "measure_id": draw(text(lim.ID_MAX)),
        "responsible": draw(text(lim.UNIT_MAX)),
        "cadre": {"id": draw(text(lim.ID_MAX)), "name": draw(text(lim.NAME_MAX)), "unit": draw(text(lim.UNIT_MAX))},
        "net_income": draw(money(-lim.MONEY_BOUND + Decimal("0.01"))),
        "rigid": draw(money(Decimal(0))),
        "finding_key": draw(text(lim.FINDING_KEY_MAX)),
        "party": {"unit": draw(text(lim.UNIT_MAX)), "person": draw(text(lim.ID_MAX)), "name": draw(text(lim.NAME_MAX))},
        "action": draw(text(lim.FREE_TEXT_MAX, FREE)),
    }


def commands(h: dict) -> list:
    hid, actor = h["hid"], h["actor"]
    members = [{**person(1), "name": h["names"][0], "relation": h["relation"]},
               {**person(2, date(1982, 5, 6)), "name": h["names"][1], "relation": "配偶"}]
    common = {"note": h["note"], "evidence": h["evidence"]}
    # 双责任: the supervisor is another person of another unit (each with its last character changed)
    def other(text: str) -> str:
        return text[:-1] + ("x" if text[-1:] != "x" else "y")

    supervisor = {**h["party"], "person": other(h["party"]["person"]), "unit": other(h["party"]["unit"])}
    return [
        register(hid, members=members, relocated=True, resettlement_site=h["site"], actor=actor,
                 command_id=h["command_id"], **common),
        cmd("record_lead", date(2023, 3, 1), actor=h["department"], household_id=hid, lead_id=h["lead_id"],
            source="department_warning", risk_types=["illness"], detail=h["detail"], **common),
        *inclusion_path(hid),
        cmd("assign_cadre", date(2023, 4, 1), household_id=hid, cadre=h["cadre"], **common),
        cmd("plan_measure", date(2023, 4, 2), actor=h["department"], household_id=hid, measure_id=h["measure_id"],
            measure_type="health", addresses=["illness"], department=h["department"]["unit"],
            responsible=h["responsible"], **common),
        cmd("assess_income", date(2023, 4, 3), actor=actor, household_id=hid, period_start="2022-04-01",
            period_end="2023-03-31", net_income=str(h["net_income"]), rigid_expenditure=str(h["rigid"])),
        parse_command({"command": "raise_problem", "problem_id": h["pid"], "on": lim.DATE_MIN.isoformat(),
                       "actor": h["inspector"], "kind": "other", "household_id": hid, "division_code": VILLAGE_CODE,
                       "source": "supervision", "detail": h["detail"], "finding_key": h["finding_key"], **common}),
        parse_command({"command": "assign_responsibility", "problem_id": h["pid"], "on": "2000-01-02",
                       "actor": h["inspector"], "responsible": h["party"], "supervisor": supervisor,
                       "deadline": lim.DATE_MAX.isoformat()}),
        parse_command({"command": "record_rectification", "problem_id": h["pid"], "on": "2000-01-03",
                       "actor": h["department"], "action": h["action"]}),
    ]


def stored(app, conn: sa.Connection, h: dict) -> dict:
    hid, pid = h["hid"], h["pid"]
    r = roster.roster
    row = conn.execute(sa.select(r.c.resettlement_site, r.c.cadre_id, r.c.cadre_name, r.c.cadre_unit,
                                 r.c.per_capita_income).where(r.c.household_id == hid)).one()
    m = roster.roster_members
    names = conn.execute(sa.select(m.c.name, m.c.relation).where(m.c.household_id == hid).order_by(m.c.person_id))
    ms = roster.roster_measures
    measure = conn.execute(sa.select(ms.c.measure_id, ms.c.department, ms.c.responsible)
                           .where(ms.c.household_id == hid)).one()
    t = timeline.timeline
    registered = conn.execute(sa.select(t.c.stream_id, t.c.type, t.c.division_code)
                              .where(t.c.stream_id == hid).order_by(t.c.position).limit(1)).one()
    history = timeline.stream_history(app, hid)
    actor = history[0]["actor"]
    first = (actor["id"], actor["name"], actor["unit"], history[0]["command_id"], history[0]["note"])
    lead = conn.execute(sa.select(casefacts.leads.c.lead_id, casefacts.leads.c.detail)
                        .where(casefacts.leads.c.household_id == hid,
                               casefacts.leads.c.lead_id == h["lead_id"])).one()
    income = conn.execute(sa.select(casefacts.incomes.c.net_income, casefacts.incomes.c.rigid_expenditure)
                          .where(casefacts.incomes.c.household_id == hid).order_by(casefacts.incomes.c.seq.desc())
                          .limit(1)).one()
    p = ledger.problem_ledger
    problem = conn.execute(sa.select(p.c.detail, p.c.finding_key, p.c.found_by_unit, p.c.responsible_unit,
                                     p.c.responsible_person, p.c.responsible_name, p.c.deadline)
                           .where(p.c.problem_id == pid)).one()
    actions = conn.execute(sa.select(ledger.rectification_ledger.c.content)
                           .where(ledger.rectification_ledger.c.problem_id == pid)).scalars().all()
    return {"roster": tuple(row), "members": [tuple(x) for x in names], "measure": tuple(measure),
            "registered": tuple(registered), "first_event": first, "lead": tuple(lead), "income": tuple(income),
            "problem": tuple(problem),
            "actions": actions}


def expected(h: dict) -> dict:
    per_capita = ((h["net_income"] - h["rigid"]) / 2).quantize(Decimal("0.01"), "ROUND_HALF_UP")
    return {
        "roster": (h["site"], h["cadre"]["id"], h["cadre"]["name"], h["cadre"]["unit"], per_capita),
        "members": sorted([(h["names"][0], h["relation"]), (h["names"][1], "配偶")],
                          key=lambda x: x != (h["names"][0], h["relation"])),
        "measure": (h["measure_id"], h["department"]["unit"], h["responsible"]),
        "registered": (h["hid"], "registered", VILLAGE_CODE),
        "first_event": (h["actor"]["id"], h["actor"]["name"], h["actor"]["unit"], h["command_id"], h["note"]),
        "lead": (h["lead_id"], h["detail"]),
        "income": (h["net_income"], h["rigid"]),
        "problem": (h["detail"], h["finding_key"], h["inspector"]["unit"], h["party"]["unit"], h["party"]["person"],
                    h["party"]["name"], lim.DATE_MAX),
    }


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow, HealthCheck.data_too_large])
@given(h=histories())
def test_commands_at_the_limits_are_caught_up_and_rebuilt_by_every_projection_unchanged(app, h):
    run(app, commands(h))
    with read_models(app) as rm:
        rm.catch_up()
        with rm.engine.connect() as conn:
            caught_up = stored(app, conn, h)
        for projection in rm.runner.projections:
            rm.runner.rebuild(projection)
        with rm.engine.connect() as conn:
            rebuilt = stored(app, conn, h)
    want = expected(h)
    assert {k: v for k, v in caught_up.items() if k not in ("members", "actions")} == {
        k: v for k, v in want.items() if k != "members"}
    assert sorted(caught_up["members"]) == sorted(want["members"])
    assert h["action"] in caught_up["actions"]
    assert rebuilt == caught_up


def test_an_income_at_the_edge_of_the_range_folds_into_the_roster_without_overflow(app):
    """The widest per-capita figure: the largest income less nothing, one member."""
    top = str(lim.MONEY_BOUND - Decimal("0.01"))
    run(app, [register("H1", members=[person(1)]),
              cmd("assess_income", date(2023, 3, 2), household_id="H1", period_start="2022-03-01",
                  period_end="2023-02-28", net_income="-" + top, rigid_expenditure=top)])
    with read_models(app) as rm:
        rm.catch_up()
        with rm.engine.connect() as conn:
            value = conn.execute(sa.select(roster.roster.c.per_capita_income)).scalar_one()
    assert value == Decimal("-" + top) * 2

