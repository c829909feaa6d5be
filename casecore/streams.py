"""Stream ids: one event stream per case, named `<kind>/<id>` (`household/522631…-01`, `problem/P-17`).

The one place that knows how a case's id becomes a stream id and back; the application, the importers and
every projection build and read stream ids through these functions.
"""

from __future__ import annotations

HOUSEHOLD_PREFIX = "household/"
PROBLEM_PREFIX = "problem/"


def household_stream(household_id: str) -> str:
    return HOUSEHOLD_PREFIX + household_id


def problem_stream(problem_id: str) -> str:
    return PROBLEM_PREFIX + problem_id


def case_id(stream: str) -> str:
    """The case's own id in a stream id (what follows the kind)."""
    return stream.split("/", 1)[-1]


def household_id_of(stream: str) -> str:
    """The household id of a household stream (a stream of another kind is returned as it is)."""
    return stream.removeprefix(HOUSEHOLD_PREFIX)


def problem_id_of(stream: str) -> str:
    """The problem id of a problem stream (a stream of another kind is returned as it is)."""
    return stream.removeprefix(PROBLEM_PREFIX)


def is_household(stream: str) -> bool:
    return stream.startswith(HOUSEHOLD_PREFIX)


def is_problem(stream: str) -> bool:
    return stream.startswith(PROBLEM_PREFIX)
