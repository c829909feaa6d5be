"""A PostgreSQL URL as the operator writes it (credentials percent-encoded) reaches the projection tables'
engine as the same user, password, host and database."""

from __future__ import annotations

import sqlalchemy as sa

from adapters.store.storage import resolve_store


def test_a_password_with_reserved_characters_reaches_the_projection_engine_whole():
    store = resolve_store("postgresql://case%40ops:p%40ss%3Aw%2Frd%3F%23%25@db.example:5433/casecore?schema=s1")
    url = sa.engine.make_url(store.sqlalchemy_url)
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "case@ops", "p@ss:w/rd?#%", "db.example", 5433, "casecore")
    assert store.env["POSTGRES_PASSWORD"] == "p@ss:w/rd?#%"
    assert "p%40ss" not in store.where and "***" in store.where
