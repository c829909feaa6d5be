"""Choosing the store: `--db` / `CASECORE_DB` is a file path or `sqlite:///…` (default `./casecore.db`) or
`postgresql://…`. The application is built on it by the composition root, `adapters.bootstrap`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlparse

from casecore.application import CaseManagement

DEFAULT_DB = "./casecore.db"
#: every store: the recorder learns each event's own recorded time from the mapper (adapters/store/hashchain.py)
_MAPPER = {"MAPPER_TOPIC": "adapters.store.hashchain:RecordingMapper"}


@dataclass(frozen=True)
class Store:
    """Where the event log lives."""

    kind: str  # "sqlite" or "postgres"
    url: str
    env: dict[str, str]
    #: a SQLite file on media nothing can write (`sqlite:///path?immutable=1`, or detected when opening)
    immutable: bool = False

    @property
    def where(self) -> str:
        """The store as a person names it: the file, or the URL without its password."""
        if self.kind == "sqlite":
            return self.env["SQLITE_DBNAME"]
        return without_password(self.url)

    @property
    def sqlalchemy_url(self) -> str:
        """The same database for projection tables."""
        if self.kind == "sqlite":
            return f"sqlite:///{self.env['SQLITE_DBNAME']}"
        e = self.env
        # the credentials were decoded from the store's URL: encoded again, or a password holding @ : / ? #
        # would be read as part of the host (the projection tables, read_only_engine)
        auth = quote(e["POSTGRES_USER"], safe="") + (
            f":{quote(e['POSTGRES_PASSWORD'], safe='')}" if e.get("POSTGRES_PASSWORD") else "")
        url = f"postgresql+psycopg://{auth}@{e['POSTGRES_HOST']}:{e['POSTGRES_PORT']}/{e['POSTGRES_DBNAME']}"
        if e.get("POSTGRES_SCHEMA"):
            url += "?options=" + quote(f"-csearch_path={e['POSTGRES_SCHEMA']}")
        return url


def without_password(url: str) -> str:
    """A store's URL as it may be shown or logged: a password is replaced by `***` (a path is unchanged)."""
    parsed = urlparse(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":***@", 1)
    return url


def resolve_store(db: str | None = None) -> Store:
    """`postgresql://user@host:port/dbname[?schema=NAME]`, `sqlite:///path`, or a plain file path."""
    url = db or os.environ.get("CASECORE_DB") or DEFAULT_DB
    if url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        parsed = urlparse(url)
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "APPLICATION_RECORDER_TOPIC": "adapters.store.hashchain:PostgresHashedRecorder",
            "POSTGRES_DBNAME": (parsed.path or "/").lstrip("/") or "postgres",
            "POSTGRES_HOST": parsed.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(parsed.port or 5432),
            "POSTGRES_USER": unquote(parsed.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parsed.password or ""),
            "POSTGRES_CONNECT_TIMEOUT": "5",
            "POSTGRES_POOL_SIZE": "4",
        }
        schema = parse_qs(parsed.query).get("schema", [""])[0]
        if schema:
            env["POSTGRES_SCHEMA"] = schema
        return Store("postgres", url, env | _MAPPER)
    path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url
    immutable = False
    if url.startswith("sqlite:///") and "?" in path:
        path, query = path.split("?", 1)
        immutable = parse_qs(query).get("immutable", ["0"])[0] in ("1", "true", "yes")
    if path != ":memory:":
        path = str(Path(path).expanduser())
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": path, "SQLITE_LOCK_TIMEOUT": "30",
           "APPLICATION_RECORDER_TOPIC": "adapters.store.hashchain:SQLiteHashedRecorder"}
    return Store("sqlite", url, env | _MAPPER, immutable)


class StoreMissing(LookupError):
    """A command that only reads was pointed at a store that does not exist (a mistyped path or schema)."""

    def __init__(self, store: Store):
        self.store = store
        super().__init__(f"事件库 {store.where} 不存在; 只读命令不会新建事件库 (只有 apply、import、demo 等写入命令"
                         "才会新建): 请检查 --db 或 CASECORE_DB")


def store_exists(store: Store) -> bool:
    """Whether the store holds an event log already (without creating anything)."""
    if store.kind == "sqlite":
        path = store.env["SQLITE_DBNAME"]
        return path == ":memory:" or Path(path).is_file()
    import psycopg

    e = store.env
    with psycopg.connect(dbname=e["POSTGRES_DBNAME"], host=e["POSTGRES_HOST"], port=e["POSTGRES_PORT"],
                         user=e["POSTGRES_USER"], password=e.get("POSTGRES_PASSWORD") or None,
                         connect_timeout=int(e.get("POSTGRES_CONNECT_TIMEOUT", "5"))) as conn:
        table = f"{e.get('POSTGRES_SCHEMA') or 'public'}.{CaseManagement.name}_events"
        row = conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()
        return row is not None and row[0] is not None


def _read_only_env(store: Store) -> dict[str, str]:
    """Open without creating or writing anything: no CREATE TABLE; PostgreSQL transactions read-only; SQLite
    read-only (`mode=ro`), or
    `immutable=1` when the file or its directory cannot be written (read-only media: without it SQLite
    would need to create its shared-memory file beside the store)."""
    env = {"CREATE_TABLE": "n"}
    if store.kind == "postgres":   # every transaction read-only (adapters/store/hashchain.py)
        return env | {"APPLICATION_RECORDER_TOPIC": "adapters.store.hashchain:PostgresReadingRecorder"}
    if store.env["SQLITE_DBNAME"] == ":memory:":
        return env
    path = Path(store.env["SQLITE_DBNAME"]).resolve()
    media = store.immutable or not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK)
    return env | {"SQLITE_DBNAME": f"file:{quote(str(path))}?{'immutable=1' if media else 'mode=ro'}"}


def read_only_engine(store: Store):
    """A SQLAlchemy engine on the store's projection tables that cannot write: SQLite opened `mode=ro` (or
    `immutable=1` on read-only media), PostgreSQL sessions with read-only transactions. For readers that
    take the tables as they are (`--no-catch-up`)."""
    import sqlite3

    import sqlalchemy as sa

    if store.kind == "sqlite":
        uri = _read_only_env(store).get("SQLITE_DBNAME", store.env["SQLITE_DBNAME"])
        # a connection of its own each time it is asked (the default pool for this URL hands one thread the same one,
        # and an inspection opens several on one snapshot)
        return sa.create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True, check_same_thread=False),
                                poolclass=sa.pool.NullPool)
    options = "-c default_transaction_read_only=on"
    if store.env.get("POSTGRES_SCHEMA"):
        options = f"-csearch_path={store.env['POSTGRES_SCHEMA']} {options}"
    return sa.create_engine(store.sqlalchemy_url.split("?", 1)[0], connect_args={"options": options})


def cipher_env() -> dict[str, str]:
    """Encryption at rest: with `CASECORE_CIPHER_KEY` set (base64 of 16, 24 or 32 random bytes), every stored
    event's state is AES-GCM encrypted by the library's cipher. The audit hashes the stored bytes, so
    verifying needs no key."""
    key = os.environ.get("CASECORE_CIPHER_KEY", "").strip()
    if not key:
        return {}
    return {"CIPHER_TOPIC": "eventsourcing.cipher:AESCipher", "CIPHER_KEY": key}


def bootstrap(db: str | None = None, *, create: bool = True, read_only: bool = False,
              chain_key_file: str | None = None) -> CaseManagement:
    """The application alone, built by the composition root (`adapters.bootstrap.wire`, which says what the
    arguments mean); `adapters.bootstrap.Wiring.of(app)` gives the rest of its wiring."""
    from adapters.bootstrap import OpenSettings, wire

    return wire(OpenSettings(db, create, read_only, chain_key_file)).app
