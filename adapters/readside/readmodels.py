"""Read models beside the event log: the SQLAlchemy engine for an application's store (the same SQLite
file, or the same PostgreSQL database and schema) and a projection runner over it.

    with read_models(app) as rm:          # every projection of the registry
        rm.catch_up()                      # fold what is new
        with rm.engine.connect() as conn:  # then read the tables
            ...
"""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from adapters.bootstrap import Wiring
from adapters.readside.snapshot import MOST_JOBS_TOLD
from adapters.store.storage import Store, resolve_store
from casecore.application import CaseManagement
from projections.registry import all_projections
from projections.runner import Projection, ProjectionRunner
from projections.sealing import Sealer, attach_sealer

#: how long a projection write waits for SQLite's write lock (the application may be writing events)
SQLITE_LOCK_SECONDS = 30


def store_of(app: CaseManagement) -> Store:
    """Where the application's events live: the store it was wired on (`adapters.bootstrap`)."""
    wiring = Wiring.of(app)
    if wiring is not None:
        return wiring.store
    env = app.env   # an application built elsewhere: derive the store from its environment
    if env.get("PERSISTENCE_MODULE") == "eventsourcing.sqlite":
        return resolve_store(env["SQLITE_DBNAME"])
    raise ValueError("cannot tell where the events live; build the application with adapters.bootstrap.wire")


def cipher_key_of(app: CaseManagement) -> str | None:
    """The key the application's events are encrypted with (`CASECORE_CIPHER_KEY`), if any."""
    return app.env.get("CIPHER_KEY") or None


def engine_for(store: Store, cipher_key: str | None = None) -> Engine:
    """An engine on the database that holds the events (projection tables live beside them). Its errors never
    print SQL parameters: they carry ID numbers and names, and error text ends up in logs. With the store's
    cipher key, the read models' personal columns are sealed with it (`projections.sealing`)."""
    engine = _engine(store)
    attach_sealer(engine, Sealer.from_base64(cipher_key) if cipher_key else None)
    return engine


def _engine(store: Store) -> Engine:
    # JSON columns are read with orjson: the same values as the json module gives, in a fraction of the time
    # (a rebuild reads back the rows its batches touch); they are still written by SQLAlchemy's json.dumps
    if store.kind == "sqlite":
        path = store.env["SQLITE_DBNAME"]
        if path == ":memory:" or "mode=memory" in path:
            raise ValueError("投影表须与事件库在同一数据库; 内存事件库 (:memory:) 不能建投影, 请使用数据库文件")
        engine = sa.create_engine(store.sqlalchemy_url, connect_args={"timeout": SQLITE_LOCK_SECONDS},
                                  hide_parameters=True, json_deserializer=orjson.loads)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # beyond the two kept open, room for an inspection shared out among the most connections it may be told
    # (`adapters.readside.snapshot`) beside a writing one
    return sa.create_engine(store.sqlalchemy_url, pool_size=2, max_overflow=MOST_JOBS_TOLD, hide_parameters=True,
                            json_deserializer=orjson.loads)


def _sqlite_pragmas(dbapi_connection, connection_record) -> None:
    # The event store keeps the file in WAL mode; there NORMAL sync still commits atomically (rows and
    # position together) and only a power cut can lose the newest batches, which the next catch-up refolds.
    # It spares an fsync per batch.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class ReadModels:
    """An engine on the application's store and a runner for the given projections (default: all)."""

    def __init__(self, app: CaseManagement, projections: Iterable[Projection] | None = None,
                 batch_size: int = 2000):
        self.app = app
        self.engine = engine_for(store_of(app), cipher_key_of(app))
        try:
            self.runner = ProjectionRunner(app, self.engine, all_projections() if projections is None else projections,
                                           batch_size=batch_size)
        except Exception:
            self.engine.dispose()
            raise

    def projection(self, name: str) -> Projection:
        return self.runner.get(name)

    def catch_up(self, name: str | None = None) -> int:
        """Fold what is new into one projection (or all); returns the events folded."""
        if name is not None:
            return self.runner.catch_up(self.runner.get(name))
        return sum(self.runner.catch_up_all().values())

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> ReadModels:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def read_models(app: CaseManagement, projections: Iterable[Projection] | None = None,
                batch_size: int = 2000) -> ReadModels:
    return ReadModels(app, projections, batch_size)
