"""A rebuild of the stream-local read models (the roster, the case facts, the ledgers) fills its shadow tables stream by
stream: every household's and problem's events in one batch, the rows written once. The tables it leaves are
the ones the log-order fold leaves, on both stores, for a lived-through county and for a fill that was
interrupted while the log grew; a restart forgets an interrupted fill's cursor."""

from __future__ import annotations

import base64
from datetime import date, timedelta

import sqlalchemy as sa

from adapters.readside.readmodels import read_models
from adapters.store.storage import bootstrap
from projections.casefacts import CaseFactsProjection
from projections.ledger import LedgerProjection
from projections.roster import RosterProjection
from projections.runner import fills, fingerprint, schemas
from tests.builders import cmd, inclusion_path, measure, register, run
from tests.readside.test_sql_rebuild import live_county

LOCAL = (RosterProjection, CaseFactsProjection, LedgerProjection)


def tables(engine: sa.Engine, projections: tuple = LOCAL) -> dict[str, list[tuple]]:
    """Every row of the projections' tables (the stream-local ones: roster, case facts, ledgers), in a fixed
    order."""
    out = {}
    with engine.connect() as conn:
        for p in projections:
            for t in p.metadata.sorted_tables:
                out[t.name] = sorted((tuple(r) for r in conn.execute(sa.select(t))), key=repr)
    return out


def fill_rows(engine: sa.Engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(fills))]


def test_a_rebuild_stream_by_stream_leaves_the_tables_the_log_order_fold_leaves(app, tmp_path):
    live_county(app, tmp_path / "out")
    with read_models(app, [p() for p in LOCAL], batch_size=7) as rm:
        rm.runner.by_stream = False
        in_log_order = rm.runner.rebuild_many()
        expected = tables(rm.engine)
        rm.runner.by_stream = True
        # a page of 7 events holds whole streams only: a household with more events is read whole on its own
        by_stream = rm.runner.rebuild_many()
        got = tables(rm.engine)
        head = rm.runner.max_position()
        assert {s.name: (s.position, s.rebuilding) for s in rm.runner.status()} == {
            "roster": (head, False), "casefacts": (head, False), "ledger": (head, False)}
        assert fill_rows(rm.engine) == []
    assert by_stream == in_log_order   # every event each reads, once
    assert expected["roster"] and expected["cf_cycles"] and expected["cf_problems"] and expected["cf_signatures"]
    assert expected["problem_ledger"] and expected["rectification_ledger"]
    for name, rows in expected.items():
        assert got[name] == rows, name


def household(hid: str, start: date) -> list:
    entered = start + timedelta(days=11)
    return [register(hid), *inclusion_path(hid, start=start), *measure(hid, f"{hid}-M1", entered)]


def test_an_interrupted_fill_goes_on_from_its_last_stream_and_the_log_gained_meanwhile_is_folded_after(app):
    run(app, [c for i in range(8) for c in household(f"H{i}", date(2023, 3, 1) + timedelta(days=i))])
    with read_models(app, [RosterProjection(), CaseFactsProjection()], batch_size=20) as rm:
        rm.catch_up()
        roster, casefacts = rm.projection("roster"), rm.projection("casefacts")
        head = rm.runner.max_position()
        for p in (roster, casefacts):
            rm.runner.rebuild(p, restart=True, stop_after_batches=2)
        [(name, filling_to, after), _] = sorted(fill_rows(rm.engine))
        assert name == "casefacts__next" and filling_to == head and "household/H0" <= after < "household/H7"
        # the log goes on: households the fill has passed and ones it has not reached, and a new one
        run(app, [cmd("assign_cadre", date(2023, 6, 1), household_id="H0",
                      cadre={"id": "c9", "name": "干部", "unit": "522631101000"}),
                  *measure("H7", "H7-M2", date(2023, 6, 2)),
                  *household("H8", date(2023, 6, 3))])
        rm.runner.catch_up_many()   # the live tables follow the log meanwhile
        current = tables(rm.engine, (RosterProjection, CaseFactsProjection))
        assert rm.runner.is_rebuilding(roster) and rm.runner.is_rebuilding(casefacts)
        left = {p.name: rm.runner.rebuild(p) for p in (roster, casefacts)}
        assert fill_rows(rm.engine) == []
        assert tables(rm.engine, (RosterProjection, CaseFactsProjection)) == current
        assert all(s.position == rm.runner.max_position() and not s.rebuilding for s in rm.runner.status())
        assert 0 < left["roster"] < rm.runner.max_position()   # went on, did not start again


def test_a_restart_forgets_an_interrupted_fill(app):
    run(app, [c for i in range(5) for c in household(f"H{i}", date(2023, 3, 1) + timedelta(days=i))])
    with read_models(app, [RosterProjection()], batch_size=15) as rm:
        rm.catch_up()
        current = tables(rm.engine, (RosterProjection,))
        roster = rm.projection("roster")
        rm.runner.rebuild(roster, restart=True, stop_after_batches=1)
        [(_, _, after)] = fill_rows(rm.engine)
        [status] = rm.runner.status()   # what `casecore projections status` shows of the fill
        assert status.rebuilding and status.rebuild_position == 0 and status.filled_through == after
        # a runner that knows no fills would resume the shadow in log order from position 0 and fold its filled
        # households again; the shadow does not carry its tables' shape meanwhile, so such a runner starts over
        with rm.engine.connect() as conn:
            carried = conn.execute(sa.select(schemas.c.fingerprint).where(schemas.c.name == "roster__next")).scalar()
        assert carried != fingerprint(roster, rm.engine.dialect)
        # and this version, told to fold in log order, still goes on with the fill under way by stream
        rm.runner.by_stream = False
        assert rm.runner.rebuild(roster) < rm.runner.max_position()
        assert tables(rm.engine, (RosterProjection,)) == current
        rm.runner.by_stream = True
        assert rm.runner.rebuild(roster, restart=True) == rm.runner.max_position()   # every event again
        assert fill_rows(rm.engine) == []
        assert tables(rm.engine, (RosterProjection,)) == current


def test_an_encrypted_store_is_filled_stream_by_stream_too(db_url, monkeypatch):
    """The events read by key are decrypted by the application's mapper, as the log-order read's are."""
    monkeypatch.setenv("CASECORE_CIPHER_KEY", base64.b64encode(b"k" * 32).decode())
    app = bootstrap(db_url)
    try:
        run(app, [c for i in range(6) for c in household(f"H{i}", date(2023, 3, 1) + timedelta(days=i))])
        with read_models(app, [p() for p in LOCAL], batch_size=25) as rm:
            rm.catch_up()
            current = tables(rm.engine)
            assert rm.runner.rebuild_many(restart=True)["roster"] == rm.runner.max_position()
            assert fill_rows(rm.engine) == []
            assert tables(rm.engine) == current
            assert len(current["roster"]) == 6
    finally:
        app.close()
