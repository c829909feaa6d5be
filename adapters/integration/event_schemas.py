"""Published JSON Schemas beyond the commands: the event feed (`casecore schema events`).

One definition per event type and version (`$defs` keyed by the CloudEvents `type`, e.g.
`cn.casecore.household.registered.v1`): the CloudEvents 1.0 envelope with `type` fixed, and `data` built
from the event class's own fields plus the fields every event carries. Generated from the classes, so a
new event or field appears here without anyone writing it twice.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from casecore.events import EVENT_TYPES, CaseCreated
from casecore.labels import event_label
from casecore.values import Role

#: the fields every event has (stream, version, clocks, actor …): not part of an event's own payload
COMMON_FIELDS = frozenset(f.name for f in dataclasses.fields(CaseCreated)) | {"class_version"}
DRAFT = "https://json-schema.org/draft/2020-12/schema"
DECIMAL = {"type": "string", "pattern": r"^-?\d+(\.\d+)?$", "description": "decimal yuan as a string"}


def _schema_of(tp: Any) -> dict[str, Any]:
    """JSON Schema of a field's type hint, as the feed serialises it."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = [_schema_of(a) for a in typing.get_args(tp)]
        return {"anyOf": options}
    if origin in (list, tuple, set, frozenset):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        return {"type": "array", "items": _schema_of(args[0]) if args else {}}
    if origin is dict or tp is dict:
        return {"type": "object"}
    if tp is type(None):
        return {"type": "null"}
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        return {"type": "integer"}
    if tp is float:
        return {"type": "number"}
    if tp is Decimal:
        return dict(DECIMAL)
    if tp is datetime:
        return {"type": "string", "format": "date-time"}
    if tp is date:
        return {"type": "string", "format": "date"}
    if tp is str:
        return {"type": "string"}
    return {}


ACTOR = {
    "type": "object",
    "description": "who acted; `name` (and an ID number used as `id`) is masked unless the consumer is entitled",
    "properties": {
        "id": {"type": "string"},
        "name": {"type": ["string", "null"]},
        "role": {"enum": [r.value for r in Role]},
        "unit": {"type": "string"},
    },
    "required": ["id", "role", "unit"],
}

COMMON_DATA: dict[str, Any] = {
    "on": {"type": "string", "format": "date", "description": "business date of the act"},
    "position": {"type": "integer", "minimum": 1, "description": "global position in the log; only grows"},
    "version": {"type": "integer", "minimum": 1, "description": "the event's version in its stream"},
    "actor": {"$ref": "#/$defs/actor"},
    "command_id": {"type": ["string", "null"]},
    "note": {"type": ["string", "null"]},
    "evidence": {"type": "array", "items": {"type": "string"}},
    "origin": {"type": ["string", "null"]},
    "date_precision": {"enum": ["day", "month"]},
}


def event_definition(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    own = [f.name for f in dataclasses.fields(cls) if f.name not in COMMON_FIELDS]
    properties = {name: _schema_of(hints[name]) for name in own} | COMMON_DATA
    topic = cls.TOPIC  # type: ignore[attr-defined]
    prefix = f"^{cls.AGGREGATE}/"  # type: ignore[attr-defined]
    return {
        "title": f"{topic} — {event_label(cls.AGGREGATE, cls.TYPE)}",  # type: ignore[attr-defined]
        "type": "object",
        "properties": {
            "specversion": {"const": "1.0"},
            "id": {"type": "string", "format": "uuid", "description": "UUID5 of subject and version; stable"},
            "source": {"type": "string", "minLength": 1},
            "type": {"const": topic},
            "subject": {"type": "string", "pattern": prefix},
            "time": {"type": "string", "format": "date-time", "description": "recorded_at (UTC)"},
            "datacontenttype": {"const": "application/json"},
            "data": {"type": "object", "properties": properties,
                     "required": [*own, "on", "position", "version", "actor"]},
        },
        "required": ["specversion", "id", "source", "type", "subject", "time", "data"],
    }


def events_schema() -> dict[str, Any]:
    """JSON Schema of every event type and version in the feed."""
    from projections.queries.replay import load_event_classes

    load_event_classes()
    defs: dict[str, Any] = {"actor": ACTOR}
    for aggregate in sorted(EVENT_TYPES):
        for name in sorted(EVENT_TYPES[aggregate]):
            cls = EVENT_TYPES[aggregate][name]
            defs[cls.TOPIC] = event_definition(cls)  # type: ignore[attr-defined]
    return {
        "$schema": DRAFT,
        "$id": "urn:casecore:schema:events",
        "title": "casecore event feed (CloudEvents 1.0, structured JSON)",
        "oneOf": [{"$ref": f"#/$defs/{k}"} for k in defs if k != "actor"],
        "$defs": defs,
    }
