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


#: PostgreSQL rebuilds the timeline in SQL too (off: measured slower there than the Python fold — the payload's
#: text, which must stay the stored text in stored order, is re-assembled key by key with `json_each`, since
#: `jsonb` would reorder the keys and re-space the text; the activity table is rebuilt in SQL on both)
TIMELINE_ON_POSTGRESQL = False


def rebuild_timeline(conn: Connection, source: EventSource, head: int) -> int | None:
    """Fill the (empty) timeline table with every event up to `head`; returns the rows written (None: fold it
    in Python)."""
    if source.dialect == "sqlite":
        return _timeline_sqlite(conn, source, head)
    return _timeline_postgresql(conn, source, head) if TIMELINE_ON_POSTGRESQL else None


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


#: (column, path) of the timeline's scalars, extracted in one pass over the state (SQLite)
_SQLITE_FIELDS = (("on", "$.on._data_"), ("stamp", "$.timestamp._data_"), ("actor_id", "$.actor.id"),
                  ("actor_name", "$.actor.name"), ("actor_role", "$.actor.role"), ("actor_unit", "$.actor.unit"),
                  ("command_id", "$.command_id"), ("origin", "$.origin"), ("date_precision", "$.date_precision"),
                  ("stage", "$.stage"), ("note", "$.note"), ("opens", "$.opens_procedure"),
                  ("evidence", "$.evidence"))


def _first_marker_as_text(payload: str) -> str:
    """`payload` with its first marker of a known type written as its text (unchanged without one; NULL for a
    marker of another type: the NOT NULL payload then fails the statement)."""
    at = f"instr({payload}, '{_MARKER}')"
    rest = f"substr({payload}, {at})"
    data_at = f"instr({rest}, '\",\"_data_\":\"')"
    end = f"instr({rest}, '\"}}')"
    name = f"substr({rest}, 12, {data_at} - 12)"
    known = ", ".join(_literal(n) for n in TEXT_MARKERS)
    return (f"CASE WHEN {at} = 0 THEN {payload} WHEN {name} IN ({known}) AND {end} > {data_at} "
            f"THEN substr({payload}, 1, {at} - 1) || '\"' || substr({rest}, {data_at} + 12, {end} - {data_at} - 12) "
            f"|| '\"' || substr({rest}, {end} + 2) END")


def _timeline_sqlite(conn: Connection, source: EventSource, head: int) -> int:
    prefix, stream = _stream("e.oid", "sqlite")
    # one parse of the state for every scalar: a JSON array of them, read back by index (a small parse each)
    at = {name: i for i, (name, _) in enumerate(_SQLITE_FIELDS)}

    def field(name: str) -> str:
        return f"(e.a ->> {at[name]})"

    stamp = field("stamp")
    # SQLAlchemy stores a DATETIME on SQLite as 'YYYY-MM-DD HH:MM:SS.ffffff' (the zone dropped)
    recorded = (f"substr({stamp}, 1, 10) || ' ' || substr({stamp}, 12, 8) || '.' || "
                f"CASE WHEN substr({stamp}, 20, 1) = '.' THEN substr(substr({stamp}, 21, 6) || '000000', 1, 6) "
                f"ELSE '000000' END")
    removed = ", ".join(f"'$.{k}'" for k in COMMON_KEYS)
    paths = ", ".join(_literal(path) for _, path in _SQLITE_FIELDS)
    rows = (f"SELECT e.pos, e.oid, e.ver, e.topic, json_extract(e.s, {paths}) AS a, "
            f"json_remove(e.s, {removed}) AS p FROM ({source.events(head)}) AS e LIMIT -1")
    stage = (f"CASE WHEN m.type = 'registered' THEN 'not_monitored' "
             f"WHEN m.type = 'lead_recorded' AND COALESCE({field('opens')}, 0) = 0 THEN NULL "
             f"ELSE {field('stage')} END")
    evidence = f"CASE WHEN json_type(e.a, '$[{at['evidence']}]') = 'array' THEN e.a -> {at['evidence']} ELSE '[]' END"
    sql = (
        f"INSERT INTO timeline_events ({_TIMELINE_COLUMNS}) "
        f"WITH m(topic, aggregate, type, version) AS ({_topics_values(source)}) "
        f"SELECT e.pos, COALESCE(m.aggregate, {prefix}), {stream}, e.ver, m.type, m.version, "
        f"{field('on')}, {recorded}, {field('actor_id')}, {field('actor_name')}, {field('actor_role')}, "
        f"{field('actor_unit')}, {field('command_id')}, {field('origin')}, "
        f"COALESCE({field('date_precision')}, 'day'), {stage}, {field('note')}, {evidence}, e.p "
        f"FROM ({rows}) AS e LEFT JOIN m ON m.topic = e.topic"
    )
    written = conn.exec_driver_sql(sql).rowcount
    _unmark_sqlite(conn)
    return written


def _unmark_sqlite(conn: Connection) -> None:
    """Write the typed values' markers in the payloads as their text (SQLite has no regular expressions): a
    recursive query walks each payload that has any from marker to marker — `h` the text done, `r` the rest
    from the next marker — and each such row is updated once. A marker of another type is left in place:
    then Python folds."""
    d = "instr(fix.r, '\",\"_data_\":\"')"
    e = "instr(fix.r, '\"}')"
    rest = f"substr(fix.r, {e} + 2)"
    nxt = f"instr({rest}, '{_MARKER}')"
    known = f"substr(fix.r, 12, {d} - 12) IN ({', '.join(_literal(n) for n in TEXT_MARKERS)}) AND {e} > {d}"
    data = f"'\"' || substr(fix.r, {d} + 12, {e} - {d} - 12) || '\"'"
    conn.exec_driver_sql(
        f"WITH RECURSIVE fix(pos, h, r) AS ("
        f"SELECT position, substr(payload, 1, instr(payload, '{_MARKER}') - 1), "
        f"substr(payload, instr(payload, '{_MARKER}')) FROM timeline_events WHERE instr(payload, '{_MARKER}') > 0 "
        f"UNION ALL SELECT fix.pos, "
        f"CASE WHEN NOT ({known}) THEN NULL WHEN {nxt} > 0 THEN fix.h || {data} || substr({rest}, 1, {nxt} - 1) "
        f"ELSE fix.h || {data} || {rest} END, "
        f"CASE WHEN ({known}) AND {nxt} > 0 THEN substr({rest}, {nxt}) END "
        f"FROM fix WHERE fix.r IS NOT NULL) "
        f"UPDATE timeline_events SET payload = fix.h FROM fix "
        f"WHERE fix.pos = timeline_events.position AND fix.r IS NULL AND fix.h IS NOT NULL")
    left = conn.exec_driver_sql(f"SELECT count(*) FROM timeline_events WHERE instr(payload, '{_MARKER}') > 0")
    if left.scalar():
        raise NotInDatabase("a payload holds a typed value other than a date, a time or a decimal")


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
        f"CASE WHEN json_typeof(u.evidence) = 'array' THEN u.evidence::text ELSE '[]' END, "
        f"CASE WHEN strpos(u.payload, '{_MARKER}') > 0 THEN NULL ELSE u.payload END "
        f"FROM ({source.events(head)}) AS e LEFT JOIN m ON m.topic = e.topic "
        f"CROSS JOIN LATERAL (SELECT {unmarked} AS payload, e.s::json -> 'evidence' AS evidence) AS u"
    )
    return conn.exec_driver_sql(sql).rowcount


# ---------------------------------------------------------------------- the activity table


#: (column, path) of what the activity table reads from its events
_ACT_FIELDS = (("acted", ("on", "_data_")), ("division_code", ("division_code",)), ("key_county", ("key_county",)),
               ("relocated", ("relocated",)), ("resettlement_site", ("resettlement_site",)),
               ("household_id", ("household_id",)), ("source", ("source",)), ("mode", ("mode",)),
               ("kind", ("kind",)), ("party", ("party",)), ("status", ("status",)))
_FLAGS = ("key_county", "relocated")


def rebuild_activity(conn: Connection, source: EventSource, head: int, topics: tuple[str, ...]) -> int:
    """Fill the (empty) activity tables with the acts up to `head`, as `ActivityProjection.fold_at` would;
    returns the activity rows written. The acts' fields are read from the stored JSON once, into a temporary
    table; the rest are joins (a problem takes the flags of its household registered before it, else its
    county's key-county flag as registrations before it set it)."""
    pg = source.dialect == "postgresql"
    false = "false" if pg else "0"
    if pg:
        fields = ", ".join(
            (f"COALESCE((e.j #>> '{{{','.join(path)}}}')::boolean, false)" if name in _FLAGS
             else f"(e.j #>> '{{{','.join(path)}}}')") + f" AS {name}" for name, path in _ACT_FIELDS)
        extracted = f"SELECT e.pos, e.oid, e.topic, {fields} FROM ({source.events(head, topics)}) AS e"
        temp = "CREATE TEMP TABLE {name} ON COMMIT DROP AS "
    else:
        paths = ", ".join(_literal("$." + ".".join(path)) for _, path in _ACT_FIELDS)
        fields = ", ".join((f"COALESCE(e.a ->> {i}, 0)" if name in _FLAGS else f"(e.a ->> {i})") + f" AS {name}"
                           for i, (name, _) in enumerate(_ACT_FIELDS))
        extracted = (f"SELECT e.pos, e.oid, e.topic, {fields} FROM (SELECT e.pos, e.oid, e.topic, "
                     f"json_extract(e.s, {paths}) AS a FROM ({source.events(head, topics)}) AS e LIMIT -1) AS e")
        temp = "CREATE TEMP TABLE {name} AS "
    for name in ("casecore_acts", "casecore_registered"):
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
    hid = f"substr(x.oid, {len('household/') + 1})"
    pid = f"substr(x.oid, {len('problem/') + 1})"
    on = "(x.acted)::date" if pg else "x.acted"
    conn.exec_driver_sql(
        temp.format(name="casecore_acts") + f"WITH m(topic, aggregate, type, version) AS ({_topics_values(source)}) "
        f"SELECT x.*, m.aggregate, m.type, CASE m.aggregate WHEN 'household' THEN {hid} ELSE {pid} END AS sid "
        f"FROM ({extracted}) AS x JOIN m ON m.topic = x.topic")
    conn.exec_driver_sql(
        temp.format(name="casecore_registered") +
        "SELECT sid AS household_id, pos, division_code, substr(division_code, 1, 6) AS county_code, key_county, "
        "relocated, resettlement_site FROM casecore_acts WHERE aggregate = 'household' AND type = 'registered'")
    conn.exec_driver_sql("CREATE INDEX casecore_registered_household ON casecore_registered (household_id)")
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
