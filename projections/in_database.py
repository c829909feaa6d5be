"""Rebuilding read models inside the database: `INSERT … SELECT` over the stored events.

The timeline's stage index and the activity table are near-copies of the log: a few fields of some events;
folding them in Python decodes every event into an object and writes it back row by row. Where the stored
state is plain JSON, the database can do the same work itself: SQLite's JSON functions and PostgreSQL's
`json`/`jsonb` read the fields, and one statement per table fills a rebuild's shadow tables up to the head
of the log. The runner then switches them in as after any rebuild (`projections/runner.py`).

When the database cannot do it, the rebuild folds in Python as before (`source_for` returns None):

- the events are encrypted (`CASECORE_CIPHER_KEY`) or compressed: the state is not JSON to the database;
- the read models are sealed (`projections/sealing.py`, the same key): sealed columns are AES-GCM values,
  which SQL does not compute;
- a statement fails (an event type the code does not know, a stored value the rules below do not cover, a
  household registered twice): the statement's transaction is rolled back whole and Python folds.

What the rows hold is exactly what the Python fold writes (a test compares the two, table by table, on a
lived-through county on both stores).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from casecore.application import CaseManagement
from casecore.events import EVENT_TYPES
from projections.sealing import sealer_of


class NotInDatabase(Exception):
    """The stored events hold something this module does not turn into rows in SQL: fold in Python."""


@dataclass(frozen=True)
class EventSource:
    """Where the stored events are, as the projection engine reaches them."""

    dialect: str
    #: the events table, quoted (and schema-qualified on PostgreSQL)
    table: str
    #: the column that is the event's global position
    position: str

    def events(self, head: int, topics: tuple[str, ...] = ()) -> str:
        """A subquery of the events up to `head` (of `topics`): position, originator_id, version, topic and
        the state: as JSON text `s` on SQLite, parsed once as `j` on PostgreSQL."""
        where = f"{self.position} <= {int(head)}"
        if topics:
            where += " AND topic IN (" + ", ".join(_literal(t) for t in topics) + ")"
        if self.dialect == "sqlite":
            return (f"SELECT {self.position} AS pos, originator_id AS oid, originator_version AS ver, topic, "
                    f"CAST(state AS TEXT) AS s FROM {self.table} WHERE {where}")
        # OFFSET 0 keeps the subquery whole: the state is parsed once a row, not once for each field read
        return (f"SELECT {self.position} AS pos, originator_id::text AS oid, originator_version AS ver, topic, "
                f"convert_from(state, 'UTF8')::jsonb AS j FROM {self.table} WHERE {where} OFFSET 0")

    # expressions over one event row `e` of `events()`

    def text(self, *path: str, row: str = "e") -> str:
        """A scalar of the state as SQL text (NULL when absent or JSON null)."""
        if self.dialect == "sqlite":
            return f"json_extract({row}.s, '$.{'.'.join(path)}')"
        return f"({row}.j #>> '{{{','.join(path)}}}')"

    def flag(self, *path: str, row: str = "e") -> str:
        """A JSON boolean as the database's boolean (absent or null: false)."""
        if self.dialect == "sqlite":
            return f"COALESCE(json_extract({row}.s, '$.{'.'.join(path)}'), 0)"
        return f"COALESCE(({row}.j #>> '{{{','.join(path)}}}')::boolean, false)"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def source_for(app: CaseManagement, conn: Connection) -> EventSource | None:
    """The stored events as this connection reaches them, or None when the rows must be folded in Python
    (encrypted or compressed events, sealed read models, a store on another database)."""
    mapper = app.mapper
    if getattr(mapper, "cipher", None) is not None or getattr(mapper, "compressor", None) is not None:
        return None
    if sealer_of(conn.dialect) is not None:
        return None
    recorder = app.recorder
    table = getattr(recorder, "events_table_name", None)
    if not table:
        return None
    quote = conn.dialect.identifier_preparer.quote
    if conn.dialect.name == "sqlite":
        if not _same_sqlite_file(conn, app.env.get("SQLITE_DBNAME") or ""):
            return None
        return EventSource("sqlite", quote(table), "rowid")
    if conn.dialect.name == "postgresql":
        schema = getattr(getattr(recorder, "datastore", None), "schema", None) or "public"
        if conn.execute(sa.text("SELECT to_regclass(:t)"), {"t": f'"{schema}"."{table}"'}).scalar() is None:
            return None
        return EventSource("postgresql", f"{quote(schema)}.{quote(table)}", "notification_id")
    return None


def _same_sqlite_file(conn: Connection, theirs: str) -> bool:
    """The projection tables are in the event store's file (they are unless a test gave them their own)."""
    import os

    mine = conn.engine.url.database or ""
    try:
        return bool(mine and theirs) and os.path.samefile(mine, theirs)
    except OSError:
        return False


# ---------------------------------------------------------------------- the timeline


def _by_topic(topics: Sequence[str], column: str = "e.topic") -> tuple[str, str]:
    """SQL expressions of the aggregate and the public type of the event classes the code knows for `topics`
    (a CASE over the few topics a statement reads: cheaper per row than a join with a list of every class;
    a topic the code does not know gives NULL, which the tables' NOT NULL columns refuse)."""
    known = {cls.TOPIC: (agg, name) for agg, types in EVENT_TYPES.items()  # type: ignore[attr-defined]
             for name, cls in types.items()}
    wanted = sorted(t for t in topics if t in known)
    if not wanted:
        return "NULL", "NULL"
    aggregate = " ".join(f"WHEN {_literal(t)} THEN {_literal(known[t][0])}" for t in wanted)
    name = " ".join(f"WHEN {_literal(t)} THEN {_literal(known[t][1])}" for t in wanted)
    return f"CASE {column} {aggregate} END", f"CASE {column} {name} END"


def rebuild_timeline(conn: Connection, source: EventSource, head: int, topics: Sequence[str]) -> int:
    """Fill the (empty) timeline table with the events up to `head` it keeps — of `topics`, those that move
    a case and each stream's first event — as `TimelineProjection.fold_at` would; returns the rows written."""
    _, stream = _stream("e.oid", source.dialect)
    events = source.events(head, tuple(topics))
    if source.dialect == "sqlite":
        # one parse of the state for its four fields (a JSON array of them, read back by index)
        fields = "json_extract(e.s, '$.on._data_', '$.stage', '$.opens_procedure', '$.division_code')"
        rows = f"SELECT e.pos, e.oid, e.ver, e.topic, {fields} AS a FROM ({events}) AS e LIMIT -1"
        on, stage, opens, division = "(e.a ->> 0)", "(e.a ->> 1)", "COALESCE(e.a ->> 2, 0) = 0", "(e.a ->> 3)"
    else:
        rows = events
        on, stage = f"({source.text('on', '_data_')})::date", source.text("stage")
        opens, division = f"NOT {source.flag('opens_procedure')}", source.text("division_code")
    aggregate, kind = _by_topic(topics)
    registered = _literal(EVENT_TYPES["household"]["registered"].TOPIC)  # type: ignore[attr-defined]
    lead = _literal(EVENT_TYPES["household"]["lead_recorded"].TOPIC)  # type: ignore[attr-defined]
    moved = (f"CASE WHEN e.topic = {registered} THEN 'not_monitored' "
             f"WHEN e.topic = {lead} AND {opens} THEN NULL ELSE {stage} END")
    # the rows are made once (the subquery kept whole: LIMIT -1 on SQLite, OFFSET 0 on PostgreSQL), then the
    # ones the table keeps are chosen
    whole = "LIMIT -1" if source.dialect == "sqlite" else "OFFSET 0"
    sql = (
        f"INSERT INTO timeline_events ({_TIMELINE_COLUMNS}) "
        f"SELECT * FROM (SELECT e.pos AS position, {aggregate} AS aggregate, {stream} AS stream_id, "
        f"e.ver AS version, {kind} AS type, {on} AS on_, {moved} AS stage, "
        f"CASE WHEN e.ver = 1 THEN NULLIF({division}, '') END AS division_code "
        f"FROM ({rows}) AS e {whole}) AS k WHERE k.stage IS NOT NULL OR k.version = 1"
    )
    return int(conn.exec_driver_sql(sql).rowcount)


_TIMELINE_COLUMNS = 'position, aggregate, stream_id, version, type, "on", stage, division_code'


def _stream(oid: str, dialect: str) -> tuple[str, str]:
    """(aggregate prefix, stream id) of `originator_id`, as `str.partition('/')` splits it (a stream id left
    empty by the split is the prefix)."""
    if dialect == "sqlite":
        at = f"instr({oid}, '/')"
        prefix = f"CASE WHEN {at} > 0 THEN substr({oid}, 1, {at} - 1) ELSE {oid} END"
        rest = f"CASE WHEN {at} > 0 THEN substr({oid}, {at} + 1) ELSE '' END"
    else:
        prefix = f"split_part({oid}, '/', 1)"
        rest = f"CASE WHEN strpos({oid}, '/') > 0 THEN substr({oid}, strpos({oid}, '/') + 1) ELSE '' END"
    return prefix, f"COALESCE(NULLIF({rest}, ''), {prefix})"


# ---------------------------------------------------------------------- the activity table


#: (column, path, the (aggregate, type) of the events whose rows read it: every event when empty) of what the
#: activity table reads from its events — a field is read only from the events the statements below read it of
_ACT_FIELDS = (("acted", ("on", "_data_"), ()),
               ("division_code", ("division_code",), (("household", "registered"), ("problem", "raised"))),
               ("key_county", ("key_county",), (("household", "registered"),)),
               ("relocated", ("relocated",), (("household", "registered"),)),
               ("resettlement_site", ("resettlement_site",), (("household", "registered"),)),
               ("household_id", ("household_id",), (("problem", "raised"),)),
               ("source", ("source",), (("household", "lead_recorded"),)),
               ("mode", ("mode",), (("household", "risk_eliminated"),)),
               ("kind", ("kind",), (("problem", "raised"),)),
               ("party", ("party",), (("problem", "held_accountable"),)),
               ("status", ("status",), (("problem", "signed_off"),)))
_FLAGS = ("key_county", "relocated")


def rebuild_activity(conn: Connection, source: EventSource, head: int, topics: tuple[str, ...]) -> int:
    """Fill the (empty) activity tables with the acts up to `head`, as `ActivityProjection.fold_at` would;
    returns the activity rows written. The acts' fields are read from the stored JSON once, into a temporary
    table; the rest are joins (a problem takes the flags of its household registered before it, else its
    county's key-county flag as registrations before it set it)."""
    pg = source.dialect == "postgresql"
    false = "false" if pg else "0"
    def only(expression: str, of: tuple[tuple[str, str], ...]) -> str:
        if not of:
            return expression
        wanted = ", ".join(_literal(EVENT_TYPES[agg][name].TOPIC) for agg, name in of  # type: ignore[attr-defined]
                           if name in EVENT_TYPES.get(agg, {}))
        return f"CASE WHEN e.topic IN ({wanted}) THEN {expression} END" if wanted else "NULL"

    if pg:
        fields = ", ".join(
            only(f"COALESCE((e.j #>> '{{{','.join(path)}}}')::boolean, false)" if name in _FLAGS
                 else f"(e.j #>> '{{{','.join(path)}}}')", of) + f" AS {name}" for name, path, of in _ACT_FIELDS)
        extracted = f"SELECT e.pos, e.oid, e.topic, {fields} FROM ({source.events(head, topics)}) AS e"
        temp = "CREATE TEMP TABLE {name} ON COMMIT DROP AS "
    else:
        paths = ", ".join(_literal("$." + ".".join(path)) for _, path, _ in _ACT_FIELDS)
        fields = ", ".join(only(f"COALESCE(e.a ->> {i}, 0)" if name in _FLAGS else f"(e.a ->> {i})", of)
                           + f" AS {name}" for i, (name, _, of) in enumerate(_ACT_FIELDS))
        extracted = (f"SELECT e.pos, e.oid, e.topic, {fields} FROM (SELECT e.pos, e.oid, e.topic, "
                     f"json_extract(e.s, {paths}) AS a FROM ({source.events(head, topics)}) AS e LIMIT -1) AS e")
        temp = "CREATE TEMP TABLE {name} AS "
    for name in ("casecore_acts", "casecore_registered"):
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
    hid = f"substr(y.oid, {len('household/') + 1})"
    pid = f"substr(y.oid, {len('problem/') + 1})"
    aggregate, kind = _by_topic(topics, "x.topic")
    on = "(x.acted)::date" if pg else "x.acted"
    conn.exec_driver_sql(
        temp.format(name="casecore_acts") + f"SELECT y.*, CASE y.aggregate WHEN 'household' THEN {hid} "
        f"ELSE {pid} END AS sid FROM (SELECT x.*, {aggregate} AS aggregate, {kind} AS type "
        f"FROM ({extracted}) AS x) AS y WHERE y.type IS NOT NULL")
    conn.exec_driver_sql(
        temp.format(name="casecore_registered") +
        "SELECT sid AS household_id, pos, division_code, substr(division_code, 1, 6) AS county_code, key_county, "
        "relocated, resettlement_site FROM casecore_acts WHERE aggregate = 'household' AND type = 'registered'")
    conn.exec_driver_sql("CREATE INDEX casecore_registered_household ON casecore_registered (household_id)")
    if pg:   # temporary tables have no statistics until analysed: the joins below are planned on them
        conn.exec_driver_sql("ANALYZE casecore_acts, casecore_registered")
    conn.exec_driver_sql(
        "INSERT INTO activity_households (household_id, division_code, county_code, key_county, relocated, "
        "resettlement_site) SELECT household_id, division_code, county_code, key_county, relocated, "
        "resettlement_site FROM casecore_registered")
    key = "k.key_county" if pg else "k.key_county <> 0"
    conn.exec_driver_sql(
        "INSERT INTO activity_problems (problem_id, division_code, household_id, key_county, relocated, "
        "resettlement_site) "
        f"WITH kc AS (SELECT k.county_code, MIN(k.pos) AS first FROM casecore_registered AS k WHERE {key} "
        f"GROUP BY k.county_code) "
        f"SELECT x.sid, x.division_code, x.household_id, "
        f"CASE WHEN h.household_id IS NOT NULL THEN h.key_county "
        f"WHEN kc.first IS NOT NULL AND kc.first < x.pos THEN {'true' if pg else '1'} ELSE {false} END, "
        f"COALESCE(h.relocated, {false}), h.resettlement_site "
        f"FROM casecore_acts AS x LEFT JOIN casecore_registered AS h ON h.household_id = x.household_id "
        f"AND x.household_id <> '' AND h.pos < x.pos "
        f"LEFT JOIN kc ON kc.county_code = substr(x.division_code, 1, 6) "
        f"WHERE x.aggregate = 'problem' AND x.type = 'raised'")
    month = "substr(x.acted, 1, 7)"
    columns = ("position, month, acted_on, kind, division_code, county_code, township_code, household_id, "
               "problem_id, subtype, key_county, relocated, resettlement_site")
    households = (
        f"SELECT x.pos, {month}, {on}, CASE x.type WHEN 'lead_recorded' THEN 'lead' "
        f"WHEN 'entered_system' THEN 'inclusion' WHEN 'risk_eliminated' THEN 'exit' "
        f"WHEN 'measure_implemented' THEN 'measure_implemented' END, h.division_code, "
        f"substr(h.division_code, 1, 6), substr(h.division_code, 1, 9), h.household_id, NULL, "
        f"CASE x.type WHEN 'lead_recorded' THEN NULLIF(x.source, '') WHEN 'risk_eliminated' THEN NULLIF(x.mode, '') "
        f"END, h.key_county, h.relocated, h.resettlement_site "
        f"FROM casecore_acts AS x JOIN activity_households AS h ON h.household_id = x.sid "
        f"WHERE x.aggregate = 'household' AND x.type IN ('lead_recorded', 'entered_system', 'risk_eliminated', "
        f"'measure_implemented')")
    problems = (
        f"SELECT x.pos, {month}, {on}, CASE x.type WHEN 'signed_off' THEN 'problem_closed' "
        f"WHEN 'raised' THEN 'problem_raised' ELSE 'accountability' END, p.division_code, "
        f"substr(p.division_code, 1, 6), substr(p.division_code, 1, 9), p.household_id, p.problem_id, "
        f"CASE x.type WHEN 'signed_off' THEN NULL WHEN 'raised' THEN x.kind WHEN 'reopened' THEN 'reopened' "
        f"ELSE x.party END, p.key_county, p.relocated, p.resettlement_site "
        f"FROM casecore_acts AS x JOIN activity_problems AS p ON p.problem_id = x.sid "
        f"WHERE x.aggregate = 'problem' AND (x.type IN ('raised', 'held_accountable', 'reopened') "
        f"OR (x.type = 'signed_off' AND x.status = 'closed'))")
    written = conn.exec_driver_sql(f"INSERT INTO activity ({columns}) {households} UNION ALL {problems}").rowcount
    if not pg:
        for name in ("casecore_acts", "casecore_registered"):
            conn.exec_driver_sql(f"DROP TABLE {name}")
    return int(written)
