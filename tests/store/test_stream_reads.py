"""The log read in stream order (`select_by_stream`, what a rebuild of the stream-local read models reads):
every event up to the head once, by stream then version, with its position, of the topics asked for; and read
off the events table's key on both stores, never a scan and a sort of the log for each page (which a
PostgreSQL store without fresh statistics planned: a rebuild quadratic in the log)."""

from __future__ import annotations

import contextlib
from datetime import date, timedelta

from casecore.household import Household
from tests.builders import inclusion_path, register


def _store(app, households: int) -> None:
    cmds = [c for i in range(households)
            for c in [register(f"H{i:05d}"),
                      *inclusion_path(f"H{i:05d}", start=date(2023, 3, 1) + timedelta(days=i % 9))]]
    assert all(o.ok for o in app.handle_many(cmds, batch_size=500))


def test_the_log_read_stream_by_stream_gives_every_event_up_to_the_head_once_in_stream_order(app):
    _store(app, 12)
    head = app.recorder.max_notification_id()
    assert all(o.ok for o in app.handle_many([register("Z0001")]))   # after the head: not read
    in_log_order = app.recorder.select_notifications(start=0, limit=10**6, stop=head)
    read, after = [], ""
    while page := app.recorder.select_by_stream(after, head, 25):   # (a household here has 10 events)
        assert len(page) <= 25
        if len(page) == 25:   # a full page may end part way through a stream: read that one from its start
            page = [n for n in page if n.originator_id != page[-1].originator_id]
        read += page
        after = page[-1].originator_id
    assert [(n.originator_id, n.originator_version) for n in read] == sorted(
        (n.originator_id, n.originator_version) for n in in_log_order), "every event to the head, once, by stream"
    assert {(n.id, n.topic, n.state) for n in read} == {(n.id, n.topic, n.state) for n in in_log_order}
    leads = app.recorder.select_by_stream("", head, 1000, [Household.LeadRecorded.TOPIC])
    assert len(leads) == 12 and {n.topic for n in leads} == {Household.LeadRecorded.TOPIC}


class _Explaining:
    """A driver cursor that explains each stream-order read before running it, on the same connection, in
    the same transaction and settings."""

    def __init__(self, cursor, plans: list[str], sqlite: bool):
        object.__setattr__(self, "_cursor", cursor)
        object.__setattr__(self, "_plans", plans)
        object.__setattr__(self, "_sqlite", sqlite)

    def __getattr__(self, name):
        return getattr(self._cursor, name)

    def __setattr__(self, name, value):
        setattr(self._cursor, name, value)

    def execute(self, statement, params=()):
        text = statement if isinstance(statement, str) else statement.as_string(self._cursor.connection)
        if "ORDER BY originator_id, originator_version" in text:
            self._cursor.execute(("EXPLAIN QUERY PLAN " if self._sqlite else "EXPLAIN ") + text, params)
            rows = self._cursor.fetchall()
            self._plans.append("\n".join(str(tuple(r)) if self._sqlite else r["QUERY PLAN"] for r in rows))
        return self._cursor.execute(statement, params)


class _SQLiteTransaction:
    def __init__(self, cursor):
        self.sqlite_cursor = cursor


def test_a_stream_order_read_walks_the_events_key_instead_of_sorting_the_log(app, monkeypatch):
    _store(app, 3000)   # 30,000 events, no statistics gathered: where PostgreSQL had planned a scan and a sort
    head = app.recorder.max_notification_id()
    datastore = app.recorder.datastore
    sqlite = type(app.recorder).__name__.startswith("SQLite")
    plans: list[str] = []
    transaction = datastore.transaction

    @contextlib.contextmanager
    def explaining(*args, **kwargs):
        with transaction(*args, **kwargs) as cursor:
            if sqlite:
                yield _SQLiteTransaction(_Explaining(cursor.sqlite_cursor, plans, sqlite))
            else:
                yield _Explaining(cursor, plans, sqlite)

    monkeypatch.setattr(datastore, "transaction", explaining)
    assert app.recorder.select_by_stream("household/H01000", head, 2000, [Household.LeadRecorded.TOPIC])
    assert app.recorder.select_by_stream("household/H01000", head, 2000)
    assert len(plans) == 2
    for plan in plans:
        if sqlite:
            assert "USING INDEX sqlite_autoindex" in plan and "TEMP B-TREE" not in plan, plan
        else:
            assert "Index Scan using" in plan and "_pkey" in plan and "Sort" not in plan, plan
