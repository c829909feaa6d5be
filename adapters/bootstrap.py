"""The composition root: settings in, the wired application out — the only place an application is built on
a store. Every entry point (the CLI, the HTTP service, the demo, the projection workers) opens one `Wiring`
and hands its parts on; nothing is attached to the application afterwards.

    wiring = wire(OpenSettings(db="county.db"))
    wiring.app      # the application service on the store
    wiring.store    # where its events live (read models are built beside them)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar
from weakref import WeakKeyDictionary

from adapters.store.hashchain import HashedRecorder, load_chain_keys
from adapters.store.storage import Store, StoreMissing, _read_only_env, cipher_env, resolve_store, store_exists
from casecore.application import CaseManagement


@dataclass(frozen=True)
class OpenSettings:
    """How to open the store: `db` as `--db` / `CASECORE_DB` name it (None: the environment's, else the default
    file); `create=False`: it must exist already; `read_only`: nothing is created or written; the hash chain's
    keys from `chain_key_file` (else `CASECORE_CHAIN_KEY_FILE` / `CASECORE_CHAIN_KEY`)."""

    db: str | None = None
    create: bool = True
    read_only: bool = False
    chain_key_file: str | None = None


@dataclass(frozen=True)
class Wiring:
    """One application on one store, as the settings asked."""

    settings: OpenSettings
    store: Store
    app: CaseManagement

    #: the settings and store each live application was built with (not the wiring itself: its strong
    #: reference to the application would keep every application, and its connections, alive)
    _built: ClassVar[WeakKeyDictionary[CaseManagement, tuple[OpenSettings, Store]]] = WeakKeyDictionary()

    @classmethod
    def of(cls, app: CaseManagement) -> Wiring | None:
        """The wiring `app` was built by, or None (an application built elsewhere, as some tests do)."""
        found = cls._built.get(app)
        return None if found is None else cls(found[0], found[1], app)

    def close(self) -> None:
        self.app.close()


def wire(settings: OpenSettings) -> Wiring:
    """Build the application on the chosen store. `create=False`: the store must exist already (else
    `StoreMissing`); `read_only=True` (implies it): nothing is created or written — the auditor's evidence
    copy keeps its digest, and a copy on read-only media opens. With `CASECORE_CIPHER_KEY` every event is
    encrypted at rest (`adapters.store.storage.cipher_env`)."""
    keys = load_chain_keys(settings.chain_key_file)
    store = resolve_store(settings.db)
    if (settings.read_only or not settings.create) and not store_exists(store):
        raise StoreMissing(store)
    env = store.env | cipher_env()
    if settings.read_only:
        env |= _read_only_env(store)
    app = CaseManagement(env=env)
    if isinstance(app.recorder, HashedRecorder):
        app.recorder.chain_keys = keys
    Wiring._built[app] = (settings, store)
    return Wiring(settings, store, app)
