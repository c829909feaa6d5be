"""Helpers the domain tests share: what the store holds for a stream, and refusals spelled out."""

from __future__ import annotations

from casecore.application import CaseManagement, household_stream


def stored(app: CaseManagement, household_id: str) -> list[tuple[int, str, bytes]]:
    """Every stored event of a household as the store has it (version, topic, serialised state)."""
    return [(e.originator_version, e.topic, bytes(e.state))
            for e in app.recorder.select_events(household_stream(household_id))]


def refusal(outcome) -> tuple[str, str | None]:
    assert not outcome.ok, f"expected a refusal, got {outcome.as_dict()}"
    return outcome.error.code, outcome.error.rule


def has_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)
