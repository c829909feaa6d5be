"""The domain's rules are decided in memory: `app` here is the application on the library's in-memory store
(the stores themselves are under test in tests/integration, where `app` runs on SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from casecore.application import CaseManagement


@pytest.fixture
def app() -> Iterator[CaseManagement]:
    application = CaseManagement()
    yield application
    application.close()
