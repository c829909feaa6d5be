"""Every projection the application keeps, in one list: add yours with one line in `PROJECTIONS`
("module:Class", the class made without arguments). Names are stable: they key `projection_positions`
and the CLI's `--projection`."""

from __future__ import annotations

from importlib import import_module

from projections.runner import Projection

#: caught up in this order
PROJECTIONS: list[str] = [
    "projections.roster:RosterProjection",
    "projections.ledger:LedgerProjection",
    "projections.activity:ActivityProjection",
    "projections.timeline:TimelineProjection",
    "projections.casefacts:CaseFactsProjection",
]


def _make(path: str) -> Projection:
    module, _, cls = path.partition(":")
    return getattr(import_module(module), cls)()


def all_projections() -> list[Projection]:
    """Fresh instances of every projection."""
    return [_make(p) for p in PROJECTIONS]


def names() -> list[str]:
    return [p.name for p in all_projections()]


def by_name(name: str) -> Projection:
    """The projection called `name`; KeyError (listing the known names) if there is none."""
    for p in all_projections():
        if p.name == name:
            return p
    raise KeyError(f"unknown projection {name!r}; known: {', '.join(names())}")
