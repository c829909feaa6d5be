"""`memory_app`: the application on the library's in-memory store, for the tests that decide a rule many times
over (properties, boundaries) and have nothing to say about the store. The tests here that take `app` get the
one of tests/conftest.py, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from casecore.application import CaseManagement


@pytest.fixture
def memory_app() -> Iterator[CaseManagement]:
    application = CaseManagement()
    yield application
    application.close()
