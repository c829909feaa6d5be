"""Tamper evidence in the storage layer: every stored event gets a hash, written in the SAME transaction.

Each event's hash covers its stream id, version, global position, the time it was recorded, its topic and
its stored state bytes (as stored: compressed and encrypted when a cipher is configured, so verifying needs
no key), and the previous event's hash in the same stream (`GENESIS` for version 1). The hashes live in a
side table beside the library's events table:

    event_hashes(originator_id, originator_version, position, recorded_at, prev_hash, hash)

(`event_hashes` on SQLite; `<app>_event_hashes`, e.g. `casecore_event_hashes`, on PostgreSQL.)

`recorded_at` is the event's own recorded time (`RecordingMapper` hands it over beside the stored bytes).
Without a chain key `hash` is plain SHA-256 (64 hex digits); with one (`ChainKeys`: `CASECORE_CHAIN_KEY` or a
keys file, rotated by date) it is `hmac-sha256:<key id>:<hex>`, an HMAC whose key the database never holds,
so that whoever can write the database cannot append or rewrite a row that verifies.

The recorders below are the library's application recorders with one addition: after the events are
inserted (and their positions are known), the hash rows are inserted with the same cursor, inside the same
transaction — so an event without its hash, or a hash without its event, is never committed by the engine.
On PostgreSQL the library has already taken its EXCLUSIVE lock on the events table by then, so reading the
previous hash of a stream cannot race another writer. `adapters.store.audit` recomputes all of this from the
stored rows.

Where the recorders reach into the library (checked against eventsourcing 9.5.6; look again on an upgrade).
The library has no public hook that runs inside its insert transaction, so the hash rows go in through the
methods its own recorders use internally:

- `SQLiteHashedRecorder._insert_events(cursor, stored_events)`: the library's insert step, run in the
  transaction `insert_events` opens; replaced whole (one `executemany`, positions from `last_insert_rowid()`),
  using the library's `insert_events_statement`.
- `PostgresHashedRecorder._fetch_ids_after_insert_events(cursor, stored_events)`: called by the library after
  its insert, with its EXCLUSIVE table lock held; extended (the library's ids, then the hash rows).
- `_session_options` edits `datastore.pool.kwargs` before the pool opens its connections.

The application itself (`casecore.application`) uses only the library's public API.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, NamedTuple
from uuid import UUID

import orjson
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Mapper, Notification, ProgrammingError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteDatastore
from psycopg.sql import SQL, Identifier

from casecore.application import StreamsReader

GENESIS = "0" * 64
_DOMAIN = b"casecore.event-hash.v1"


def event_hash(prev_hash: str, originator_id: str, version: int, position: int, recorded_at: str, topic: str,
               state: bytes) -> str:
    """SHA-256 over the event's stored content and the previous hash; every part length-prefixed, so no two
    different events can be written as the same byte string."""
    parts = (_DOMAIN, prev_hash.encode(), originator_id.encode(), str(version).encode(), str(position).encode(),
             recorded_at.encode(), topic.encode(), bytes(state))
    return hashlib.sha256(b"".join([len(p).to_bytes(8, "big") + p for p in parts])).hexdigest()


# ---------------------------------------------------------------------------------------------------- keyed chain

#: a keyed hash is stored as `hmac-sha256:<key id>:<hex>`: the row names its key, never holds it
KEYED = "hmac-sha256"
_KEYED_DOMAIN = b"casecore.event-hmac.v1"
_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,40}")
KEYS_FORMAT = "casecore.chain-keys.v1"


class ChainKeyError(ValueError):
    """A chain key or keys file that cannot be used (one sentence saying what to fix)."""


@dataclass(frozen=True)
class ChainKey:
    """One secret of the keyed chain, in force from `since` (a UTC date) until a newer key's `since`."""

    id: str
    since: date
    secret: bytes = field(repr=False)


class ChainKeys:
    """The keys a deployment has used, oldest first. Writers chain with the newest one in force; the audit
    needs every one (old keys are kept for verification, never for writing)."""

    def __init__(self, keys: Iterable[ChainKey]):
        self.keys = sorted(keys, key=lambda k: (k.since, k.id))
        ids = [k.id for k in self.keys]
        if len(set(ids)) != len(ids):
            raise ChainKeyError("链密钥文件中有重复的 id; 每个密钥须有自己的 id")

    def current(self, today: date) -> ChainKey | None:
        """The newest key in force on `today`, or None before the first one."""
        return next((k for k in reversed(self.keys) if k.since <= today), None)

    def get(self, key_id: str) -> ChainKey | None:
        return next((k for k in self.keys if k.id == key_id), None)

    @classmethod
    def from_base64(cls, text: str) -> ChainKeys:
        """`CASECORE_CHAIN_KEY`: one key in force from the beginning; its id is a digest of the key."""
        secret = _decode_secret(text, "CASECORE_CHAIN_KEY")
        key_id = "k" + hashlib.sha256(b"casecore.chain-key-id" + secret).hexdigest()[:12]
        return cls([ChainKey(key_id, date.min, secret)])

    @classmethod
    def from_file(cls, path: str | Path) -> ChainKeys:
        """A keys file: `{"format": "casecore.chain-keys.v1", "keys": [{"id", "from", "key"}, …]}`."""
        try:
            data = orjson.loads(Path(path).read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise ChainKeyError(f"无法读取链密钥文件 {path}: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != KEYS_FORMAT or not isinstance(data.get("keys"), list):
            raise ChainKeyError(f"{path} 不是链密钥文件 (format 应为 {KEYS_FORMAT}); 用 casecore audit keygen 生成")
        keys = []
        for n, entry in enumerate(data["keys"], 1):
            try:
                key_id, since, text = str(entry["id"]), date.fromisoformat(str(entry["from"])), str(entry["key"])
            except (KeyError, TypeError, ValueError):
                raise ChainKeyError(f"{path} 第 {n} 个密钥须有 id、from (YYYY-MM-DD) 和 key (base64)") from None
            check_key_id(key_id, str(path))
            keys.append(ChainKey(key_id, since, _decode_secret(text, f"{path} 密钥 {key_id}")))
        if not keys:
            raise ChainKeyError(f"{path} 中没有密钥")
        return cls(keys)


def check_key_id(key_id: str, where: str) -> None:
    """A key id a keys file can hold (and a stored hash can name): letters, digits, `. _ -`, at most 40."""
    if not _KEY_ID.fullmatch(key_id):
        raise ChainKeyError(f"{where} 密钥 id {key_id!r} 只能含字母、数字和 . _ - (至多 40 个)")


def _decode_secret(text: str, where: str) -> bytes:
    try:
        secret = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ChainKeyError(f"{where} 不是 base64") from None
    if len(secret) < 16:
        raise ChainKeyError(f"{where} 太短: 至少 16 字节 (用 casecore audit keygen 生成 32 字节的密钥)")
    return secret


def load_chain_keys(file: str | Path | None = None) -> ChainKeys | None:
    """The chain keys of this process: `file` (`--chain-key-file`), else `CASECORE_CHAIN_KEY_FILE`, else
    `CASECORE_CHAIN_KEY` (base64); None without any (the plain chain)."""
    file = file or os.environ.get("CASECORE_CHAIN_KEY_FILE") or None
    if file:
        return ChainKeys.from_file(file)
    text = os.environ.get("CASECORE_CHAIN_KEY", "").strip()
    return ChainKeys.from_base64(text) if text else None


def new_secret() -> str:
    """32 random bytes, base64: a new chain key."""
    return base64.b64encode(os.urandom(32)).decode()


def keyed_hash(key: ChainKey, prev_hash: str, originator_id: str, version: int, position: int, recorded_at: str,
               topic: str, state: bytes) -> str:
    """HMAC-SHA256 over the same parts as `event_hash` and the key's id: without the secret no one can
    compute it, so no one can append or rewrite an event that verifies."""
    parts = (_KEYED_DOMAIN, key.id.encode(), prev_hash.encode(), originator_id.encode(), str(version).encode(),
             str(position).encode(), recorded_at.encode(), topic.encode(), bytes(state))
    mac = hmac.new(key.secret, b"".join([len(p).to_bytes(8, "big") + p for p in parts]), hashlib.sha256)
    return f"{KEYED}:{key.id}:{mac.hexdigest()}"


def key_of(stored_hash: str) -> str | None:
    """The key id a stored hash names (None: the plain chain)."""
    if stored_hash.startswith(KEYED + ":"):
        return stored_hash[len(KEYED) + 1:].rpartition(":")[0]
    return None


class Unverifiable(LookupError):
    """The hash was computed with a key the verifier does not hold."""


def recompute(stored_hash: str, keys: ChainKeys | None, prev_hash: str, originator_id: str, version: int,
              position: int, recorded_at: str, topic: str, state: bytes) -> str:
    """What the stored hash should be, computed the way it claims to have been (plain or with its key)."""
    key_id = key_of(stored_hash)
    if key_id is None:
        return event_hash(prev_hash, originator_id, version, position, recorded_at, topic, state)
    key = keys.get(key_id) if keys is not None else None
    if key is None:
        raise Unverifiable(key_id)
    return keyed_hash(key, prev_hash, originator_id, version, position, recorded_at, topic, state)


class HashRow(NamedTuple):
    originator_id: str
    originator_version: int
    position: int
    recorded_at: str
    prev_hash: str
    hash: str


class AuditRow(NamedTuple):
    """One line of the stored log joined with its hash row (either side may be missing)."""

    originator_id: str
    originator_version: int
    position: int | None  # the event row's position (None: no event row)
    topic: str | None
    state: bytes | None
    hashed: HashRow | None  # None: no hash row


def _sid(originator_id: UUID | str) -> str:
    return originator_id.hex if isinstance(originator_id, UUID) else str(originator_id)


def recorded_text(moment: datetime) -> str:
    """A recorded time as stored and hashed (UTC, microseconds)."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def now_recorded() -> str:
    """The system clock as a recorded time (for an event that carries none of its own)."""
    return recorded_text(datetime.now(UTC))


@dataclass(frozen=True)
class RecordedEvent(StoredEvent):
    """A stored event with the time its domain event was recorded at (`timestamp`): the one recorded time the
    chain, the checkpoint's days, replay and the feed all use."""

    recorded_at: str = ""


class RecordingMapper(Mapper[str]):
    """The library's mapper, handing the recorder each event's own recorded time beside its stored bytes
    (which may be encrypted: the recorder cannot read it from them)."""

    def to_stored_event(self, domain_event: DomainEventProtocol[str]) -> StoredEvent:
        s = super().to_stored_event(domain_event)
        moment = getattr(domain_event, "timestamp", None)
        if not isinstance(moment, datetime) or moment.tzinfo is None:
            return s
        return RecordedEvent(s.originator_id, s.originator_version, s.topic, s.state, recorded_text(moment))


def chain(stored_events: Sequence[StoredEvent], positions: Sequence[int], previous: dict[str, str],
          key: ChainKey | None = None) -> list[HashRow]:
    """Hash rows for a batch of events just inserted. `previous` holds each stream's hash before the batch.
    Each row's `recorded_at` is the event's own (`RecordedEvent`); the system clock only for an event
    stored without one. With a `key` the rows are keyed hashes (HMAC), else the plain chain."""
    now = now_recorded()
    last = dict(previous)
    rows = []
    for s, position in zip(stored_events, positions, strict=True):
        sid = _sid(s.originator_id)
        prev = last.get(sid, GENESIS)
        recorded_at = (s.recorded_at if isinstance(s, RecordedEvent) else "") or now
        if key is None:
            h = event_hash(prev, sid, s.originator_version, position, recorded_at, s.topic, s.state)
        else:
            h = keyed_hash(key, prev, sid, s.originator_version, position, recorded_at, s.topic, s.state)
        rows.append(HashRow(sid, s.originator_version, position, recorded_at, prev, h))
        last[sid] = h
    return rows


def _wanted_previous(stored_events: Sequence[StoredEvent]) -> list[tuple[str, int]]:
    """(stream, version before the batch) for each stream whose first event in the batch is not its first."""
    first: dict[str, int] = {}
    for s in stored_events:
        first.setdefault(_sid(s.originator_id), s.originator_version)
    return [(sid, v - 1) for sid, v in first.items() if v > 1]


class HashedRecorder(StreamsReader):
    """What both hashed recorders offer beyond the library's: the audit's view of the stored rows, and the
    bulk path's reading of many streams at once (`casecore.application.StreamsReader`)."""

    hashes_table_name: str
    #: the keyed chain's keys (set by `adapters.store.storage.bootstrap`); None: the plain chain
    chain_keys: ChainKeys | None = None

    def chain_key(self) -> ChainKey | None:
        """The key new hash rows are computed with: the newest in force today (UTC)."""
        return self.chain_keys.current(datetime.now(UTC).date()) if self.chain_keys is not None else None

    def iter_audit_rows(self) -> Iterator[AuditRow]:  # pragma: no cover - implemented below
        raise NotImplementedError

    def key_usage(self) -> list[tuple[str | None, int, int, int]]:  # pragma: no cover - implemented below
        """(key id or None for the plain chain, lowest position, highest position, rows) per key used."""
        raise NotImplementedError

    def stream_positions(self, originator_id: str) -> dict[int, int]:  # pragma: no cover - implemented below
        raise NotImplementedError

    def select_stream_at(self, originator_id: str) -> list[tuple[int, StoredEvent]]:
        """One stream's stored events in stream order, each with its global position: one read by the events
        table's key (a household's history, `projections.timeline.stream_history`)."""
        raise NotImplementedError  # pragma: no cover - implemented below

    def select_streams(self, originator_ids: Sequence[str]) -> dict[str, list[StoredEvent]]:
        """Every stored event of several streams at once, in stream order (the bulk path loads a batch's
        streams with one query instead of one a stream)."""
        raise NotImplementedError  # pragma: no cover - implemented below

    def select_by_stream(self, after: str, stop: int, limit: int,
                         topics: Sequence[str] = ()) -> list[Notification]:
        """The log in stream order instead of log order: up to `limit` events of the streams named after
        `after`, by stream then version, each with its position, only those at or below position `stop` (and
        of `topics` when given). One range read of the events table's key: a rebuild of a projection whose
        rows each come from one stream folds every stream whole, its rows written once instead of once a
        batch (`projections.runner.ProjectionRunner`)."""
        raise NotImplementedError  # pragma: no cover - implemented below


# ---------------------------------------------------------------------------------------------------- SQLite


class SQLiteHashedRecorder(SQLiteApplicationRecorder, HashedRecorder):
    """The library's SQLite application recorder, writing a hash row for every event it inserts."""

    def __init__(self, datastore: SQLiteDatastore, events_table_name: str = "stored_events"):
        self.hashes_table_name = "event_hashes"
        super().__init__(datastore, events_table_name)

    def construct_create_table_statements(self) -> list[str]:
        t = self.hashes_table_name
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {t} ("
            "originator_id TEXT NOT NULL, originator_version INTEGER NOT NULL, position INTEGER NOT NULL, "
            "recorded_at TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL, "
            "PRIMARY KEY (originator_id, originator_version)) WITHOUT ROWID",
        ]

    def _insert_events(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int]:
        positions = self._insert_rows(c, stored_events)
        previous: dict[str, str] = {}
        wanted = _wanted_previous(stored_events)
        for i in range(0, len(wanted), 400):
            chunk = wanted[i : i + 400]
            values = ",".join("(?,?)" for _ in chunk)
            # a join on the VALUES list: SQLite then looks each one up by primary key (`(a, b) IN (VALUES …)`
            # scanned the whole hash table for every batch)
            c.execute(
                f"SELECT h.originator_id, h.hash FROM (VALUES {values}) AS w JOIN {self.hashes_table_name} AS h "
                "ON h.originator_id = w.column1 AND h.originator_version = w.column2",
                [x for pair in chunk for x in pair],
            )
            previous.update((row[0], row[1]) for row in c.fetchall())
        rows = chain(stored_events, positions, previous, self.chain_key())
        c.executemany(f"INSERT INTO {self.hashes_table_name} VALUES (?,?,?,?,?,?)", rows)
        return positions

    def _insert_rows(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent]) -> list[int]:
        """Insert the event rows with one executemany (the library executes one statement a row, to read each
        `lastrowid`) and return their positions (rowids). Inside the transaction this connection holds the
        write lock, so the rows take consecutive rowids ending at `last_insert_rowid()`; the first and last
        are checked, and if they are not where expected every position is read back by key."""
        if not stored_events:
            return []
        rows = [(_sid(s.originator_id), s.originator_version, s.topic, s.state) for s in stored_events]
        c.executemany(self.insert_events_statement, rows)
        c.execute("SELECT last_insert_rowid()")
        last = c.fetchone()[0]
        first = last - len(rows) + 1
        select = f"SELECT rowid FROM {self.events_table_name} WHERE originator_id = ? AND originator_version = ?"
        c.execute(select, rows[0][:2])
        found_first = c.fetchone()
        c.execute(select, rows[-1][:2])
        found_last = c.fetchone()
        if found_first is not None and found_last is not None and (found_first[0], found_last[0]) == (first, last):
            return list(range(first, last + 1))
        positions = []
        for row in rows:   # pragma: no cover - only if rowids were not allocated consecutively
            c.execute(select, row[:2])
            positions.append(c.fetchone()[0])
        return positions

    def select_streams(self, originator_ids: Sequence[str]) -> dict[str, list[StoredEvent]]:
        found: dict[str, list[StoredEvent]] = {}
        ids = list(originator_ids)
        with self.datastore.transaction(commit=False) as c:
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                c.execute(f"SELECT originator_id, originator_version, topic, state FROM {self.events_table_name} "
                          f"WHERE originator_id IN ({','.join('?' for _ in chunk)}) "
                          "ORDER BY originator_id, originator_version", chunk)
                for row in c.fetchall():
                    found.setdefault(row[0], []).append(StoredEvent(row[0], row[1], row[2], row[3]))
        return found

    def iter_audit_rows(self) -> Iterator[AuditRow]:
        e, h = self.events_table_name, self.hashes_table_name
        statement = (
            f"SELECT COALESCE(e.originator_id, h.originator_id) AS sid, "
            f"COALESCE(e.originator_version, h.originator_version) AS ver, e.rowid AS pos, e.topic, e.state, "
            f"h.originator_id AS h_id, h.position AS h_pos, h.recorded_at, h.prev_hash, h.hash "
            f"FROM {e} AS e FULL OUTER JOIN {h} AS h "
            f"ON e.originator_id = h.originator_id AND e.originator_version = h.originator_version "
            f"ORDER BY sid, ver, pos"
        )
        with self.datastore.transaction(commit=False) as c:
            cursor = c.sqlite_cursor
            cursor.execute(statement)
            for row in cursor:
                yield _audit_row(row["sid"], row["ver"], row["pos"], row["topic"], row["state"], row["h_id"],
                                 row["h_pos"], row["recorded_at"], row["prev_hash"], row["hash"])

    def key_usage(self) -> list[tuple[str | None, int, int, int]]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT {_KEY_PREFIX}, min(position), max(position), count(*) FROM {self.hashes_table_name} "
                      "GROUP BY 1")
            return [_usage(*row) for row in c.fetchall()]

    def stream_positions(self, originator_id: str) -> dict[int, int]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT originator_version, rowid FROM {self.events_table_name} WHERE originator_id = ?",
                      (originator_id,))
            return {row[0]: row[1] for row in c.fetchall()}

    def select_by_stream(self, after: str, stop: int, limit: int,
                         topics: Sequence[str] = ()) -> list[Notification]:
        where = f" AND topic IN ({', '.join('?' * len(topics))})" if topics else ""
        with self.datastore.transaction(commit=False) as c:
            cursor = c.sqlite_cursor
            cursor.row_factory = None   # plain tuples: a page is thousands of rows
            cursor.execute(f"SELECT originator_id, originator_version, topic, state, rowid "
                           f"FROM {self.events_table_name} WHERE originator_id > ? AND rowid <= ?{where} "
                           "ORDER BY originator_id, originator_version LIMIT ?", (after, stop, *topics, limit))
            return [Notification(*row) for row in cursor.fetchall()]

    def select_stream_at(self, originator_id: str) -> list[tuple[int, StoredEvent]]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT rowid, originator_version, topic, state FROM {self.events_table_name} "
                      "WHERE originator_id = ? ORDER BY originator_version", (originator_id,))
            return [(row[0], StoredEvent(originator_id, row[1], row[2], row[3])) for row in c.fetchall()]


#: the `hmac-sha256:<key id>` part of a stored hash in SQL ('' for a plain 64-digit hash)
_KEY_PREFIX = "CASE WHEN length(hash) > 64 THEN substr(hash, 1, length(hash) - 65) ELSE '' END"


def _usage(prefix: Any, low: Any, high: Any, rows: Any) -> tuple[str | None, int, int, int]:
    prefix = _as_text(prefix)
    return (key_of(prefix + ":") if prefix else None), _as_int(low), _as_int(high), _as_int(rows)


def _audit_row(sid: Any, ver: Any, pos: Any, topic: Any, state: Any, h_id: Any, h_pos: Any,
               recorded_at: Any, prev_hash: Any, hash_: Any) -> AuditRow:
    """One joined row, every column coerced to the type the engine writes: a value of another type (SQLite
    stores whatever an UPDATE gives it) then simply fails its hash instead of crashing the audit."""
    sid = _sid(sid)
    ver = _as_int(ver)
    hashed = None if h_id is None else HashRow(sid, ver, _as_int(h_pos), _as_text(recorded_at),
                                                _as_text(prev_hash), _as_text(hash_))
    event = pos is not None
    return AuditRow(sid, ver, _as_int(pos) if event else None, _as_text(topic) if event else None,
                    _as_bytes(state) if event else None, hashed)


def _as_int(value: Any) -> int:
    if isinstance(value, int):
        return value
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    return "" if value is None else str(value)


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return b"" if value is None else str(value).encode()


# ---------------------------------------------------------------------------------------------------- PostgreSQL


#: session settings of the event store's connections (see `_point_lookups`)
SESSION_OPTIONS = {"jit": "off", "max_parallel_workers_per_gather": "0"}


def _point_lookups(datastore: PostgresDatastore) -> None:
    """The store's connections run without JIT compilation and without parallel workers. Loading a stream
    is a point lookup that neither speeds up, but the planner decides by estimated cost, and on a large
    events table without fresh statistics (autovacuum off) it estimated 100,000 rows for one stream: each
    load then compiled the query (`jit_above_cost`; `EXPLAIN ANALYZE` at 200,000 households: 0.4 ms of
    execution, 16.6 ms in all) or started two parallel workers (6.4 ms for 51 rows). Set through the pool's
    connection arguments, so every connection the pool opens has them (the snapshot store shares the pool);
    a setting already given there is kept."""
    _session_options(datastore, SESSION_OPTIONS)


def _session_options(datastore: PostgresDatastore, settings: dict[str, str]) -> None:
    kwargs = datastore.pool.kwargs
    options = kwargs.get("options") or ""
    for name, value in settings.items():
        if f"{name}=" not in options:
            options = f"{options} -c {name}={value}".strip()
    kwargs["options"] = options


class PostgresHashedRecorder(PostgresApplicationRecorder, HashedRecorder):
    """The library's PostgreSQL application recorder, writing a hash row for every event it inserts (after
    the library's EXCLUSIVE table lock, in the same transaction)."""

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        _point_lookups(datastore)   # before the library's recorder opens the pool
        super().__init__(datastore, events_table_name=events_table_name)
        self.hashes_table_name = events_table_name.removesuffix("_events") + "_event_hashes"
        self.check_identifier_length(self.hashes_table_name)
        schema, table = Identifier(self.datastore.schema), Identifier(self.hashes_table_name)
        self.sql_create_statements.append(SQL(
            "CREATE TABLE IF NOT EXISTS {schema}.{table} ("
            "originator_id text NOT NULL, originator_version bigint NOT NULL, position bigint NOT NULL, "
            "recorded_at text NOT NULL, prev_hash text NOT NULL, hash text NOT NULL, "
            "PRIMARY KEY (originator_id, originator_version))"
        ).format(schema=schema, table=table))
        self._select_previous = SQL(
            "SELECT h.originator_id, h.hash FROM {schema}.{table} AS h "
            "JOIN unnest(%s::text[], %s::bigint[]) AS w(sid, ver) "
            "ON h.originator_id = w.sid AND h.originator_version = w.ver"
        ).format(schema=schema, table=table)
        self._select_positions = SQL(
            "SELECT originator_id::text AS sid, originator_version AS ver, notification_id AS pos "
            "FROM {schema}.{events} WHERE notification_id = ANY(%s)"
        ).format(schema=schema, events=Identifier(self.events_table_name))
        self._insert_hashes = SQL(
            "INSERT INTO {schema}.{table} "
            "SELECT * FROM unnest(%s::text[], %s::bigint[], %s::bigint[], %s::text[], %s::text[], %s::text[]) "
            "RETURNING originator_version"
        ).format(schema=schema, table=table)

    def create_table(self) -> None:
        """The library's tables, created by one process at a time: processes opening a new store together
        (workers started at once) raced on CREATE TYPE / CREATE TABLE IF NOT EXISTS and one of them failed."""
        with self.datastore.get_connection() as conn:   # autocommit: a session-level advisory lock
            key = f"casecore:create:{self.datastore.schema}.{self.events_table_name}"
            conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (key,))
            try:
                super().create_table()
            finally:
                conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (key,))

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        if self.datastore.enable_db_functions:
            raise ProgrammingError("POSTGRES_ENABLE_DB_FUNCTIONS bypasses the hash chain; unset it")
        return super().insert_events(stored_events, **kwargs)

    def _fetch_ids_after_insert_events(self, curs: Any, stored_events: Sequence[StoredEvent],
                                       **kwargs: Any) -> Sequence[int] | None:
        ids = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        if not stored_events:
            return ids
        # Map positions by (stream, version) rather than trusting RETURNING's row order.
        curs.execute(self._select_positions, (list(ids or []),))
        by_key = {(r["sid"], r["ver"]): r["pos"] for r in curs.fetchall()}
        positions = [by_key[(_sid(s.originator_id), s.originator_version)] for s in stored_events]
        wanted = _wanted_previous(stored_events)
        previous: dict[str, str] = {}
        if wanted:
            curs.execute(self._select_previous, ([w[0] for w in wanted], [w[1] for w in wanted]))
            previous = {r["originator_id"]: r["hash"] for r in curs.fetchall()}
        rows = chain(stored_events, positions, previous, self.chain_key())
        columns = list(zip(*rows, strict=True))
        curs.execute(self._insert_hashes, [list(col) for col in columns])
        curs.fetchall()  # surfaces a constraint violation here, inside the insert's error handling
        return ids

    def iter_audit_rows(self) -> Iterator[AuditRow]:
        statement = SQL(
            "SELECT COALESCE(e.originator_id::text, h.originator_id) AS sid, "
            "COALESCE(e.originator_version, h.originator_version) AS ver, e.notification_id AS pos, e.topic, "
            "e.state, h.originator_id AS h_id, h.position AS h_pos, h.recorded_at, h.prev_hash, h.hash "
            "FROM {schema}.{events} AS e FULL OUTER JOIN {schema}.{hashes} AS h "
            "ON e.originator_id::text = h.originator_id AND e.originator_version = h.originator_version "
            'ORDER BY COALESCE(e.originator_id::text, h.originator_id) COLLATE "C", '
            "COALESCE(e.originator_version, h.originator_version), e.notification_id"
        ).format(schema=Identifier(self.datastore.schema), events=Identifier(self.events_table_name),
                 hashes=Identifier(self.hashes_table_name))
        with self.datastore.get_connection() as conn, conn.transaction(), \
                conn.cursor(name="casecore_audit") as cursor:
            cursor.itersize = 2000
            cursor.execute(statement)
            for row in cursor:
                yield _audit_row(row["sid"], row["ver"], row["pos"], row["topic"], row["state"], row["h_id"],
                                 row["h_pos"], row["recorded_at"], row["prev_hash"], row["hash"])

    def key_usage(self) -> list[tuple[str | None, int, int, int]]:
        statement = SQL(f"SELECT {_KEY_PREFIX} AS k, min(position) AS lo, max(position) AS hi, count(*) AS n "
                        "FROM {schema}.{hashes} GROUP BY 1").format(
            schema=Identifier(self.datastore.schema), hashes=Identifier(self.hashes_table_name))
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(statement)
            return [_usage(r["k"], r["lo"], r["hi"], r["n"]) for r in curs.fetchall()]

    def select_streams(self, originator_ids: Sequence[str]) -> dict[str, list[StoredEvent]]:
        statement = SQL("SELECT originator_id::text AS sid, originator_version, topic, state FROM {schema}.{events} "
                        "WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version"
                        ).format(schema=Identifier(self.datastore.schema), events=Identifier(self.events_table_name))
        found: dict[str, list[StoredEvent]] = {}
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(statement, (list(originator_ids),))
            for r in curs.fetchall():
                found.setdefault(r["sid"], []).append(
                    StoredEvent(r["sid"], r["originator_version"], r["topic"], bytes(r["state"])))
        return found

    def stream_positions(self, originator_id: str) -> dict[int, int]:
        statement = SQL("SELECT originator_version, notification_id FROM {schema}.{events} "
                        "WHERE originator_id = %s").format(schema=Identifier(self.datastore.schema),
                                                           events=Identifier(self.events_table_name))
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, (originator_id,))
            return {r["originator_version"]: r["notification_id"] for r in curs.fetchall()}

    def select_by_stream(self, after: str, stop: int, limit: int,
                         topics: Sequence[str] = ()) -> list[Notification]:
        statement = SQL("SELECT notification_id, originator_id::text AS sid, originator_version, topic, state "
                        "FROM {schema}.{events} WHERE originator_id > %s AND notification_id <= %s"
                        + (" AND topic = ANY(%s)" if topics else "")
                        + " ORDER BY originator_id, originator_version LIMIT %s"
                        ).format(schema=Identifier(self.datastore.schema), events=Identifier(self.events_table_name))
        params: tuple[Any, ...] = (after, stop, list(topics), limit) if topics else (after, stop, limit)
        with self.datastore.transaction(commit=False) as curs:
            # the key's order, read off its index: with the filters, a store without fresh statistics planned a
            # scan of every event below the head and a sort of them, for each page (a rebuild quadratic in the log)
            curs.execute("SET LOCAL enable_sort = off")
            curs.execute("SET LOCAL enable_bitmapscan = off")
            curs.execute(statement, params)
            return [Notification(id=r["notification_id"], originator_id=r["sid"],
                                 originator_version=r["originator_version"], topic=r["topic"], state=bytes(r["state"]))
                    for r in curs.fetchall()]

    def select_stream_at(self, originator_id: str) -> list[tuple[int, StoredEvent]]:
        statement = SQL("SELECT notification_id, originator_version, topic, state FROM {schema}.{events} "
                        "WHERE originator_id = %s ORDER BY originator_version"
                        ).format(schema=Identifier(self.datastore.schema), events=Identifier(self.events_table_name))
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, (originator_id,))
            return [(r["notification_id"], StoredEvent(originator_id, r["originator_version"], r["topic"],
                                                       bytes(r["state"]))) for r in curs.fetchall()]


class PostgresReadingRecorder(PostgresHashedRecorder):
    """The hashed recorder for commands that only read (audit, replay, show, the feed): every connection of
    the store — events, hashes and snapshots share its pool — runs its transactions read-only, so nothing a
    reader does can write, whatever code path it takes."""

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        _session_options(datastore, {"default_transaction_read_only": "on"})   # before the pool opens
        super().__init__(datastore, events_table_name=events_table_name)
