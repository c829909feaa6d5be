"""`BulkCases`: what one bulk call keeps between its batches — the newest cases, at most `maxsize`."""

from __future__ import annotations

from casecore.application import BulkCases, CaseManagement
from casecore.household import Household


def case() -> Household:
    return Household.__new__(Household)   # identity only: BulkCases never looks inside a case


def test_a_saved_batch_is_kept_and_streams_not_stored_are_not():
    kept = BulkCases(maxsize=10)
    h1 = case()
    kept.keep({"household/H1": h1, "household/NOPE": None})
    assert "household/H1" in kept and kept["household/H1"] is h1
    assert "household/NOPE" not in kept
    assert kept.missing(["household/H1", "household/H2"]) == {"household/H2"}


def test_the_least_recently_kept_go_first_beyond_maxsize():
    kept = BulkCases(maxsize=2)
    kept.keep({"a": case(), "b": case()})
    kept.keep({"a": case()})          # kept again: now the newest
    kept.keep({"c": case()})
    assert len(kept) == 2 and "b" not in kept and "a" in kept and "c" in kept


def test_forget_and_clear():
    kept = BulkCases(maxsize=5)
    kept.keep({"a": case(), "b": case()})
    kept.forget("a")
    kept.forget("missing")
    assert "a" not in kept and len(kept) == 1
    kept.clear()
    assert len(kept) == 0


def test_save_takes_cases_only():
    import pytest

    app = CaseManagement({"PERSISTENCE_MODULE": "eventsourcing.popo"})
    with pytest.raises(TypeError):
        app.save(object())  # type: ignore[arg-type]
