"""The integrators' feed: the event log as CloudEvents 1.0 (structured JSON), in position order.

- `id`: UUID5 of the stream id and version (`event_id`): stable for the event's life, the same on every
  read, on every store and after a migration that keeps streams and versions — so it doubles as the
  deduplication key downstream (NATS `Nats-Msg-Id`).
- `source`: this deployment, `CASECORE_SOURCE` or `urn:casecore:<hostname>`.
- `type`: the event class's versioned topic, `cn.casecore.<aggregate>.<event>.v<version>`.
- `subject`: the stream id (`household/<id>`, `problem/<id>`); `time`: recorded_at (UTC).
- `data`: the payload plus `on`, `position`, `version`, `actor`, `command_id`, `note`, `evidence`,
  `origin`, `date_precision`.

Positions are the store's notification ids. They only grow; a reader asks for ids above its last one.
On PostgreSQL ids can have gaps (a rolled-back insert burns its ids) but never fill in later: the library
takes an EXCLUSIVE lock on the events table for every insert, so transactions receive ids and commit one
after another, and once an id is visible every lower id is committed or gone for good.

Personal data (citizen ID numbers, people's names) is masked unless the consumer is entitled to it.
"""

from __future__ import annotations

import os
import re
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal
from enum import Enum
from typing import Any

import orjson

from casecore.application import CaseManagement
from casecore.events import CaseEvent

EVENT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:casecore:event")
SPECVERSION = "1.0"
PAGE = 1000


def event_id(stream: str, version: int) -> str:
    """The event's CloudEvents id: stable and unique per (stream, version)."""
    return str(uuid.uuid5(EVENT_NAMESPACE, f"{stream}#{version}"))


def deployment_source() -> str:
    return os.environ.get("CASECORE_SOURCE") or f"urn:casecore:{socket.gethostname()}"


def _encode_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset):
        return list(value)
    raise TypeError(f"cannot put {type(value).__name__} in the feed")


def jsonable(value: Any) -> Any:
    """Event values as JSON: dates ISO, money as decimal strings, enums as their value (one orjson
    round trip: much faster than walking the values in Python)."""
    return orjson.loads(orjson.dumps(value, default=_encode_default, option=orjson.OPT_NON_STR_KEYS))


# ---------------------------------------------------------------------------------------------------- masking

#: keys whose string values are people's names (members, actors, cadres, responsible persons, the ledgers'
#: and the roster's name columns) or the actor id that names a party's person
NAME_KEYS = frozenset({"name", "person", "responsible", "found_by_name", "responsible_name", "supervisor_name",
                       "actor_name", "cadre_name", "head_name", "responsible_person", "supervisor_person"})
#: keys whose values (a string or a list of strings) are citizen ID numbers
ID_KEYS = frozenset({"person_id", "children_out_of_school", "members_without_medical_insurance",
                     "head_person_id"})
#: keys whose values are birth dates: digits 7–14 of the ID number, which the mask hides — shown as the year only
BIRTH_KEYS = frozenset({"birth_date"})
#: keys whose values list parties as "unit name(person); …" (the rectification ledger's `persons`)
PARTIES_KEYS = frozenset({"persons"})
_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])(\d{6})\d{8}(\d{3}[0-9Xx])(?![0-9A-Za-z])")
_PARTY = re.compile(r"([^\s;()]+)\(([^)]*)\)")


def mask_id(value: str) -> str:
    """Keep the 6-digit region and the last 4 characters: 522631********0012."""
    if len(value) <= 10:
        return "*" * len(value)
    return value[:6] + "*" * (len(value) - 10) + value[-4:]


def mask_name(value: str) -> str:
    """Keep the first character (the surname, mostly): 张*, 欧**."""
    return value[:1] + "*" * max(1, len(value) - 1) if value else value


def mask_birth_date(value: str) -> str:
    """The year only (1980-01-02 → 1980): with the day, the masked ID number's hidden digits are known."""
    return value[:4]


def _mask_parties(value: str) -> str:
    return _PARTY.sub(lambda m: f"{mask_name(m.group(1))}({mask_name(m.group(2))})", value)


def mask(value: Any, key: str | None = None) -> Any:
    """Mask ID numbers, names and birth dates anywhere in a document (JSON values: an event's data, a state, a
    listing's rows); ID numbers also inside free text. The one masking of every surface that is masked unless
    its reader is entitled to personal data."""
    kind = type(value)
    if kind is dict:
        return {k: mask(v, k) for k, v in value.items()}
    if kind is list:
        return [mask(v, key) for v in value]
    if kind is str:
        if key in ID_KEYS:
            return mask_id(value)
        if key in NAME_KEYS:
            return mask_name(value)
        if key in BIRTH_KEYS:
            return mask_birth_date(value)
        if key in PARTIES_KEYS:
            value = _mask_parties(value)
        if len(value) >= 18:
            return _ID_NUMBER.sub(lambda m: m.group(1) + "********" + m.group(2), value)
    elif key in BIRTH_KEYS and isinstance(value, date):
        return str(value.year)
    return value


# ---------------------------------------------------------------------------------------------------- events


def event_data(event: CaseEvent, position: int) -> dict[str, Any]:
    data = jsonable(event.payload())
    data.update({
        "on": event.on.isoformat(),
        "position": position,
        "version": event.originator_version,
        "actor": jsonable(event.actor),
        "command_id": event.command_id,
        "note": event.note,
        "evidence": list(event.evidence),
        "origin": event.origin,
        "date_precision": event.date_precision,
    })
    return data


def to_cloudevent(event: CaseEvent, position: int, source: str, entitled: bool = False) -> dict[str, Any]:
    """One stored event as a CloudEvents 1.0 structured JSON object."""
    stream = str(event.originator_id)
    data = event_data(event, position)
    return {
        "specversion": SPECVERSION,
        "id": event_id(stream, event.originator_version),
        "source": source,
        "type": type(event).TOPIC,
        "subject": stream,
        "time": event.timestamp.isoformat(),
        "datacontenttype": "application/json",
        "data": data if entitled else mask(data),
    }


def read_events(app: CaseManagement, after: int = 0, limit: int = PAGE) -> list[tuple[int, CaseEvent]]:
    """Up to `limit` stored events with positions above `after`, in position order."""
    notifications = app.recorder.select_notifications(start=after, limit=limit, inclusive_of_start=False)
    return [(n.id, app.mapper.to_domain_event(n)) for n in notifications]  # type: ignore[misc]


def read_feed(app: CaseManagement, after: int = 0, limit: int | None = None, source: str | None = None,
              entitled: bool = False) -> Iterator[dict[str, Any]]:
    """The feed after a position, page by page, until the head (or `limit` events)."""
    source = source or deployment_source()
    left = limit
    while left is None or left > 0:
        page = read_events(app, after, PAGE if left is None else min(PAGE, left))
        if not page:
            return
        for position, event in page:
            yield to_cloudevent(event, position, source, entitled)
        after = page[-1][0]
        if left is not None:
            left -= len(page)


def follow_feed(app: CaseManagement, after: int = 0, limit: int | None = None, source: str | None = None,
                entitled: bool = False, poll_seconds: float = 0.5,
                stop: Callable[[], bool] | None = None) -> Iterator[dict[str, Any]]:
    """The feed after a position, then new events as they are committed (polling), until `stop()` or
    `limit` events."""
    seen = 0
    while not (stop and stop()):
        got = False
        for ce in read_feed(app, after, None if limit is None else limit - seen, source, entitled):
            yield ce
            got = True
            seen += 1
            after = ce["data"]["position"]
        if limit is not None and seen >= limit:
            return
        if not got:
            time.sleep(poll_seconds)
