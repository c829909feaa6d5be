"""Transcodings the event store needs beyond the library's defaults: `date` (business dates)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from eventsourcing.persistence import Transcoding


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class SubclassAs(Transcoding):
    """Stores a subclass of date/datetime (such as a test clock's fake one) as its real base type."""

    def __init__(self, subclass: type, base: type[date] | type[datetime], name: str):
        self.type = subclass
        self.base = base
        self.name = name

    def encode(self, obj: Any) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> Any:
        return self.base.fromisoformat(data)
