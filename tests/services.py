"""Real services the integration tests talk to: skipped with a printed reason on a machine without them,
mandatory under CI=true (a missing service fails the run)."""

from __future__ import annotations

import os
import socket

import pytest

PG_URL = os.environ.get("CASECORE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
NATS_URL = os.environ.get("CASECORE_TEST_NATS", "nats://127.0.0.1:4222")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def postgres_reason() -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        import psycopg

        with psycopg.connect(PG_URL.replace("postgresql://", "postgresql://", 1), connect_timeout=3) as conn:
            conn.execute("select 1")
        return None
    except Exception as exc:  # any failure to connect is a reason to skip (or fail in CI)
        return f"PostgreSQL not reachable at {PG_URL}: {exc.__class__.__name__}: {str(exc).strip()[:120]}"


def nats_reason() -> str | None:
    from urllib.parse import urlparse

    u = urlparse(NATS_URL)
    if _port_open(u.hostname or "127.0.0.1", u.port or 4222):
        return None
    return f"NATS not reachable at {NATS_URL}"


def require(reason: str | None) -> None:
    """Skip (newcomer's machine) or fail (CI) when a needed service is missing."""
    if reason is None:
        return
    if in_ci():
        pytest.fail(f"CI=true and a required service is missing: {reason}", pytrace=False)
    pytest.skip(reason)
