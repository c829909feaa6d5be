"""Rebuilding copy-like read models inside the database: `INSERT … SELECT` over the stored events.

The timeline is a copy of the log and the activity table a near-copy; folding them in Python decodes every
event into an object and writes it back row by row. Where the stored state is plain JSON, the database can
do the same work itself: SQLite's JSON functions and PostgreSQL's `json`/`jsonb` read the payload, and one
statement per table fills a rebuild's shadow tables up to the head of the log. The runner then switches
them in as after any rebuild (`projections/runner.py`).

When the database cannot do it, the rebuild folds in Python as before (`source_for` returns None):

- the events are encrypted (`CASECORE_CIPHER_KEY`) or compressed: the state is not JSON to the database;
- the read models are sealed (`projections/sealing.py`, the same key): the timeline's actor name, note,
  evidence and payload are AES-GCM sealed values, which SQL does not compute;
- a statement fails (an event type the code does not know, a stored value the rules below do not cover, a
  household registered twice): the statement's transaction is rolled back whole and Python folds.

What the rows hold is exactly what the Python fold writes (a test compares the two, table by table, on a
lived-through county on both stores). Typed values in the stored JSON are markers
(`{"_type_":"date_iso","_data_":"2023-01-01"}`, the transcoder's); the timeline's payload writes them as their
text, as the Python fold's JSON does: dates, datetimes and Decimals only — any other marker fails the
statement (a NOT NULL payload), and Python folds.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from casecore.application import CaseManagement
from casecore.events import _COMMON, EVENT_TYPES
from projections.sealing import sealer_of

#: transcodings whose `_data_` is the text the Python fold's JSON writes for the decoded value
TEXT_MARKERS = ("date_iso", "datetime_iso", "decimal_str", "fake_date_iso", "fake_datetime_iso")
_MARKER = '{"_type_":"'
#: the event fields that are not the payload (the timeline's payload is the rest, in stored order)
COMMON_KEYS = tuple(sorted(_COMMON | {"originator_id", "originator_version"}))


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
        the state as JSON text `s` (and parsed once as `j` on PostgreSQL)."""
        where = f"{self.position} <= {int(head)}"
        if topics:
            where += " AND topic IN (" + ", ".join(_literal(t) for t in topics) + ")"
        if self.dialect == "sqlite":
            return (f"SELECT {self.position} AS pos, originator_id AS oid, originator_version AS ver, topic, "
                    f"CAST(state AS TEXT) AS s FROM {self.table} WHERE {where}")
        return (f"SELECT {self.position} AS pos, originator_id::text AS oid, originator_version AS ver, topic, "
                f"convert_from(state, 'UTF8') AS s, convert_from(state, 'UTF8')::jsonb AS j "
                f"FROM {self.table} WHERE {where}")

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


def _topics_values(source: EventSource) -> str:
    """(topic, aggregate, type, version) of every event class the code knows, as a VALUES list."""
    rows = [f"({_literal(cls.TOPIC)}, {_literal(agg)}, {_literal(name)}, {int(cls.VERSION)})"
            for agg, types in sorted(EVENT_TYPES.items()) for name, cls in sorted(types.items())]
    return "VALUES " + ", ".join(rows)


def rebuild_timeline(conn: Connection, source: EventSource, head: int) -> int:
    """Fill the (empty) timeline table with every event up to `head`; returns the rows written."""
    if source.dialect == "sqlite":
        return _timeline_sqlite(conn, source, head)
    return _timeline_postgresql(conn, source, head)


_TIMELINE_COLUMNS = ('position, aggregate, stream_id, version, type, event_version, "on", recorded_at, actor_id, '
                     'actor_name, actor_role, actor_unit, command_id, origin, date_precision, stage, note, '
                     'evidence, payload')


def _stage(source: EventSource) -> str:
    opens = source.flag("opens_procedure")
    falsy = f"NOT {opens}" if source.dialect == "postgresql" else f"{opens} = 0"
    return (f"CASE WHEN m.type = 'registered' THEN 'not_monitored' "
            f"WHEN m.type = 'lead_recorded' AND {falsy} THEN NULL "
            f"ELSE {source.text('stage')} END")


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


def _timeline_sqlite(conn: Connection, source: EventSource, head: int) -> int:
    prefix, stream = _stream("e.oid", "sqlite")
    stamp = source.text("timestamp", "_data_")
    # SQLAlchemy stores a DATETIME on SQLite as 'YYYY-MM-DD HH:MM:SS.ffffff' (the zone dropped)
    recorded = (f"substr({stamp}, 1, 10) || ' ' || substr({stamp}, 12, 8) || '.' || "
                f"CASE WHEN substr({stamp}, 20, 1) = '.' THEN substr(substr({stamp}, 21, 6) || '000000', 1, 6) "
                f"ELSE '000000' END")
    removed = ", ".join(f"'$.{k}'" for k in COMMON_KEYS)
    sql = (
        f"INSERT INTO timeline_events ({_TIMELINE_COLUMNS}) "
        f"WITH m(topic, aggregate, type, version) AS ({_topics_values(source)}) "
        f"SELECT e.pos, COALESCE(m.aggregate, {prefix}), {stream}, e.ver, m.type, m.version, "
        f"{source.text('on', '_data_')}, {recorded}, "
        f"{source.text('actor', 'id')}, {source.text('actor', 'name')}, {source.text('actor', 'role')}, "
        f"{source.text('actor', 'unit')}, {source.text('command_id')}, {source.text('origin')}, "
        f"COALESCE({source.text('date_precision')}, 'day'), {_stage(source)}, {source.text('note')}, "
        f"CASE WHEN json_type(e.s, '$.evidence') = 'array' THEN json_extract(e.s, '$.evidence') ELSE '[]' END, "
        f"json_remove(e.s, {removed}) "
        f"FROM ({source.events(head)}) AS e LEFT JOIN m ON m.topic = e.topic"
    )
    written = conn.exec_driver_sql(sql).rowcount
    _unmark_sqlite(conn)
    return written


def _unmark_sqlite(conn: Connection) -> None:
    """Write the typed values' markers in the payloads as their text, one marker a row and pass (SQLite has no
    regular expressions): a pass rewrites the first marker of every payload that still has one."""
    conn.exec_driver_sql("DROP TABLE IF EXISTS temp.casecore_marked")
    conn.exec_driver_sql(f"CREATE TEMP TABLE casecore_marked AS SELECT position FROM timeline_events "
                         f"WHERE instr(payload, '{_MARKER}') > 0")
    at = f"instr(payload, '{_MARKER}')"
    rest = f"substr(payload, {at})"
    data_at = f"instr({rest}, '\",\"_data_\":\"')"
    end = f"instr({rest}, '\"}}')"
    name = f"substr({rest}, 12, {data_at} - 12)"
    known = ", ".join(_literal(n) for n in TEXT_MARKERS)
    step = (f"UPDATE timeline_events SET payload = CASE WHEN {name} IN ({known}) AND {end} > {data_at} "
            f"THEN substr(payload, 1, {at} - 1) || '\"' || substr({rest}, {data_at} + 12, {end} - {data_at} - 12) "
            f"|| '\"' || substr({rest}, {end} + 2) ELSE NULL END "
            f"WHERE position IN (SELECT position FROM casecore_marked) AND {at} > 0")
    while conn.exec_driver_sql(step).rowcount:
        conn.exec_driver_sql(f"DELETE FROM casecore_marked WHERE position IN (SELECT position FROM "
                             f"timeline_events WHERE position IN (SELECT position FROM casecore_marked) "
                             f"AND {at} = 0)")
    conn.exec_driver_sql("DROP TABLE temp.casecore_marked")


def _timeline_postgresql(conn: Connection, source: EventSource, head: int) -> int:
    prefix, stream = _stream("e.oid", "postgresql")
    common = "ARRAY[" + ", ".join(_literal(k) for k in COMMON_KEYS) + "]"
    names = "|".join(TEXT_MARKERS)
    # the payload: the stored JSON's other keys in stored order, values as stored (json keeps the text)
    payload = (f"(SELECT '{{' || COALESCE(string_agg(to_json(p.key)::text || ':' || p.value::text, ',' "
               f"ORDER BY p.n), '') || '}}' FROM json_each(e.s::json) WITH ORDINALITY AS p(key, value, n) "
               f"WHERE p.key <> ALL({common}))")
    unmarked = (f"regexp_replace({payload}, '\\{{\"_type_\":\"(?:{names})\",\"_data_\":(\"[^\"]*\")\\}}', "
                f"'\\1', 'g')")
    sql = (
        f"INSERT INTO timeline_events ({_TIMELINE_COLUMNS}) "
        f"WITH m(topic, aggregate, type, version) AS ({_topics_values(source)}) "
        f"SELECT e.pos, COALESCE(m.aggregate, {prefix}), {stream}, e.ver, m.type, m.version, "
        f"({source.text('on', '_data_')})::date, ({source.text('timestamp', '_data_')})::timestamptz, "
        f"{source.text('actor', 'id')}, {source.text('actor', 'name')}, {source.text('actor', 'role')}, "
        f"{source.text('actor', 'unit')}, {source.text('command_id')}, {source.text('origin')}, "
        f"COALESCE({source.text('date_precision')}, 'day'), {_stage(source)}, {source.text('note')}, "
        f"CASE WHEN json_typeof(e.s::json -> 'evidence') = 'array' THEN (e.s::json -> 'evidence')::text "
        f"ELSE '[]' END, "
        f"CASE WHEN strpos(u.payload, '{_MARKER}') > 0 THEN NULL ELSE u.payload END "
        f"FROM ({source.events(head)}) AS e LEFT JOIN m ON m.topic = e.topic "
        f"CROSS JOIN LATERAL (SELECT {unmarked} AS payload) AS u"
    )
    return conn.exec_driver_sql(sql).rowcount


# ---------------------------------------------------------------------- the activity table


def rebuild_activity(conn: Connection, source: EventSource, head: int, topics: tuple[str, ...]) -> int:
    """Fill the (empty) activity tables with the acts up to `head`, as `ActivityProjection.fold_at` would;
    returns the activity rows written."""
    s = source
    pg = s.dialect == "postgresql"
    substr = "substr"
    hid = f"{substr}(e.oid, {len('household/') + 1})"
    pid = f"{substr}(e.oid, {len('problem/') + 1})"

    def date_of(text: str) -> str:
        return f"({text})::date" if pg else text

    def county(code: str) -> str:
        return f"{substr}({code}, 1, 6)"

    def township(code: str) -> str:
        return f"{substr}({code}, 1, 9)"

    events = s.events(head, topics)
    typed = (f"SELECT e.*, m.aggregate, m.type FROM ({events}) AS e "
             f"JOIN m ON m.topic = e.topic")
    false = "false" if pg else "0"
    # registrations, with their positions: a problem takes the flags of its household registered before it
    reg = (f"SELECT {hid} AS household_id, e.pos, {s.text('division_code')} AS division_code, "
           f"{county(s.text('division_code'))} AS county_code, {s.flag('key_county')} AS key_county, "
           f"{s.flag('relocated')} AS relocated, {s.text('resettlement_site')} AS resettlement_site "
           f"FROM ev AS e WHERE e.aggregate = 'household' AND e.type = 'registered'")
    key_county_before = (f"EXISTS (SELECT 1 FROM reg AS k WHERE k.county_code = {county(s.text('division_code'))} "
                         f"AND k.key_county AND k.pos < e.pos)") if pg else (
                         f"EXISTS (SELECT 1 FROM reg AS k WHERE k.county_code = {county(s.text('division_code'))} "
                         f"AND k.key_county <> 0 AND k.pos < e.pos)")
    prob = (f"SELECT {pid} AS problem_id, e.pos, {s.text('division_code')} AS division_code, "
            f"{s.text('household_id')} AS household_id, "
            f"CASE WHEN h.household_id IS NOT NULL THEN h.key_county ELSE {key_county_before} END AS key_county, "
            f"COALESCE(h.relocated, {false}) AS relocated, h.resettlement_site "
            f"FROM ev AS e LEFT JOIN reg AS h ON h.household_id = {s.text('household_id')} "
            f"AND {s.text('household_id')} <> '' AND h.pos < e.pos "
            f"WHERE e.aggregate = 'problem' AND e.type = 'raised'")
    topics_cte = f"m(topic, aggregate, type, version) AS ({_topics_values(s)})"
    with_ = f"WITH {topics_cte}, ev AS ({typed}), reg AS ({reg}), prob AS ({prob}) "
    if pg:
        with_ = with_.replace(", ev AS (", ", ev AS MATERIALIZED (", 1)
    conn.exec_driver_sql(
        "INSERT INTO activity_households (household_id, division_code, county_code, key_county, relocated, "
        "resettlement_site) " + with_ +
        "SELECT household_id, division_code, county_code, key_county, relocated, resettlement_site FROM reg")
    conn.exec_driver_sql(
        "INSERT INTO activity_problems (problem_id, division_code, household_id, key_county, relocated, "
        "resettlement_site) " + with_ +
        "SELECT problem_id, division_code, household_id, key_county, relocated, resettlement_site FROM prob")
    on = s.text("on", "_data_")
    month = f"{substr}({on}, 1, 7)"
    kind_of_household = ("CASE e.type WHEN 'lead_recorded' THEN 'lead' WHEN 'entered_system' THEN 'inclusion' "
                         "WHEN 'risk_eliminated' THEN 'exit' WHEN 'measure_implemented' THEN 'measure_implemented' "
                         "END")
    subtype_of_household = (f"CASE e.type WHEN 'lead_recorded' THEN NULLIF({s.text('source')}, '') "
                            f"WHEN 'risk_eliminated' THEN NULLIF({s.text('mode')}, '') END")
    households = (
        f"SELECT e.pos, {month}, {date_of(on)}, {kind_of_household}, h.division_code, "
        f"{county('h.division_code')}, {township('h.division_code')}, h.household_id, NULL, "
        f"{subtype_of_household}, h.key_county, h.relocated, h.resettlement_site "
        f"FROM ev AS e JOIN activity_households AS h ON h.household_id = {hid} "
        f"WHERE e.aggregate = 'household' AND e.type IN ('lead_recorded', 'entered_system', 'risk_eliminated', "
        f"'measure_implemented')")
    kind_of_problem = ("CASE e.type WHEN 'signed_off' THEN 'problem_closed' WHEN 'raised' THEN 'problem_raised' "
                       "ELSE 'accountability' END")
    subtype_of_problem = (f"CASE e.type WHEN 'signed_off' THEN NULL WHEN 'raised' THEN {s.text('kind')} "
                          f"WHEN 'reopened' THEN 'reopened' ELSE {s.text('party')} END")
    problems = (
        f"SELECT e.pos, {month}, {date_of(on)}, {kind_of_problem}, p.division_code, "
        f"{county('p.division_code')}, {township('p.division_code')}, p.household_id, p.problem_id, "
        f"{subtype_of_problem}, p.key_county, p.relocated, p.resettlement_site "
        f"FROM ev AS e JOIN activity_problems AS p ON p.problem_id = {pid} "
        f"WHERE e.aggregate = 'problem' AND (e.type IN ('raised', 'held_accountable', 'reopened') "
        f"OR (e.type = 'signed_off' AND {s.text('status')} = 'closed'))")
    columns = ("position, month, acted_on, kind, division_code, county_code, township_code, household_id, "
               "problem_id, subtype, key_county, relocated, resettlement_site")
    with_ev = f"WITH {topics_cte}, ev AS ({typed}) "
    written = conn.exec_driver_sql(f"INSERT INTO activity ({columns}) {with_ev}{households} UNION ALL {problems}")
    return int(written.rowcount)
