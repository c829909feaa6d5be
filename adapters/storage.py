"""Choosing the store: `--db` / `CASECORE_DB` is a file path or `sqlite:///…` (default `./casecore.db`) or
`postgresql://…`. This is the composition root: settings in, a ready application out."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlparse

from casecore.application import CaseManagement

DEFAULT_DB = "./casecore.db"
#: every store: the recorder learns each event's own recorded time from the mapper (adapters/hashchain.py)
_MAPPER = {"MAPPER_TOPIC": "adapters.hashchain:RecordingMapper"}


@dataclass(frozen=True)
class Store:
    """Where the event log lives."""

    kind: str  # "sqlite" or "postgres"
    url: str
    env: dict[str, str]

    @property
    def sqlalchemy_url(self) -> str:
        """The same database for projection tables."""
        if self.kind == "sqlite":
            return f"sqlite:///{self.env['SQLITE_DBNAME']}"
        e = self.env
        auth = e["POSTGRES_USER"] + (f":{e['POSTGRES_PASSWORD']}" if e.get("POSTGRES_PASSWORD") else "")
        url = f"postgresql+psycopg://{auth}@{e['POSTGRES_HOST']}:{e['POSTGRES_PORT']}/{e['POSTGRES_DBNAME']}"
        if e.get("POSTGRES_SCHEMA"):
            url += "?options=" + quote(f"-csearch_path={e['POSTGRES_SCHEMA']}")
        return url


def resolve_store(db: str | None = None) -> Store:
    """`postgresql://user@host:port/dbname[?schema=NAME]`, `sqlite:///path`, or a plain file path."""
    url = db or os.environ.get("CASECORE_DB") or DEFAULT_DB
    if url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        parsed = urlparse(url)
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "APPLICATION_RECORDER_TOPIC": "adapters.hashchain:PostgresHashedRecorder",
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
    if path != ":memory:":
        path = str(Path(path).expanduser())
    return Store("sqlite", url, {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": path,
                                 "SQLITE_LOCK_TIMEOUT": "30",
                                 "APPLICATION_RECORDER_TOPIC": "adapters.hashchain:SQLiteHashedRecorder"} | _MAPPER)


def cipher_env() -> dict[str, str]:
    """Encryption at rest: with `CASECORE_CIPHER_KEY` set (base64 of 16, 24 or 32 random bytes), every stored
    event's state is AES-GCM encrypted by the library's cipher. The audit hashes the stored bytes, so
    verifying needs no key."""
    key = os.environ.get("CASECORE_CIPHER_KEY", "").strip()
    if not key:
        return {}
    return {"CIPHER_TOPIC": "eventsourcing.cipher:AESCipher", "CIPHER_KEY": key}


def bootstrap(db: str | None = None) -> CaseManagement:
    """Build the application on the chosen store."""
    store = resolve_store(db)
    app = CaseManagement(env=store.env | cipher_env())
    app.store = store  # type: ignore[attr-defined]
    return app
