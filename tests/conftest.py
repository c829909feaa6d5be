"""Fixtures: a fresh application on SQLite (a temp file) and on the real PostgreSQL (a schema of its own
per test, dropped afterwards)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from freezegun.api import FakeDate, FakeDatetime

from adapters.store.storage import bootstrap, resolve_store
from casecore.application import CaseManagement
from casecore.transcoding import SubclassAs
from tests.services import PG_URL, postgres_reason, require

# Saving inside freeze_time stores freezegun's fake dates: store them as the real types.
CaseManagement.extra_transcodings[:] = [
    SubclassAs(FakeDatetime, __import__("datetime").datetime, "fake_datetime_iso"),
    SubclassAs(FakeDate, __import__("datetime").date, "fake_date_iso"),
]


def pytest_report_header(config: pytest.Config) -> list[str]:
    from adapters.output.printing import missing_tools

    reason = postgres_reason()
    missing = missing_tools()
    return [f"postgres: {'available at ' + PG_URL if reason is None else 'SKIPPING postgres tests — ' + reason}",
            f"libreoffice: {'SKIPPING print tests — missing ' + ', '.join(missing) if missing else 'available'}"]


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return str(tmp_path / "casecore.db")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose event tables live in a fresh schema (search_path via options)."""
    require(postgres_reason())
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG_URL}?schema={schema}"
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request) -> str:
    """Both stores: the same test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("pg_url")


@pytest.fixture
def app(db_url) -> Iterator[CaseManagement]:
    application = bootstrap(db_url)
    try:
        yield application
    finally:
        application.close()


@pytest.fixture
def sqlite_app(sqlite_url) -> Iterator[CaseManagement]:
    application = bootstrap(sqlite_url)
    try:
        yield application
    finally:
        application.close()


__all__ = ["resolve_store"]
