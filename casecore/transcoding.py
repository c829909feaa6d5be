"""Transcodings the event store needs beyond the library's defaults (`date`: business dates), and a faster
transcoder for the same stored format."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import orjson
from eventsourcing.persistence import JSONTranscoder, Transcoding


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


class OrjsonTranscoder(JSONTranscoder):
    """The library's JSON transcoder's format, written and read with orjson.

    Stored bytes are the same JSON with the same `{"_type_": name, "_data_": …}` markers for the registered
    types (date, datetime, Decimal, UUID, …), so events stored by either transcoder are read by both: no store
    needs converting, and the choice is not per store. Encoding passes dates and datetimes to the registered
    transcodings (orjson would otherwise write them as bare strings, and they would come back as strings).
    Decoding parses with orjson, then revives the markers in one walk over dicts and lists.
    """

    _OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS

    def encode(self, obj: Any) -> bytes:
        # str/int subclasses (enums) are written as their plain values, as the json module writes them
        return orjson.dumps(obj, default=self._encode_obj, option=self._OPTIONS)

    def decode(self, data: bytes) -> Any:
        obj = orjson.loads(data)
        if b'"_type_"' in data:
            if type(obj) is dict:
                self._revive_dict(obj)
            elif type(obj) is list:
                self._revive_list(obj)
        return obj

    # The walk runs for every event read: markers are decoded inline, and only containers are descended into.

    def _revive_dict(self, obj: dict[str, Any]) -> None:
        for k, v in obj.items():
            t = type(v)
            if t is dict:
                if "_type_" in v and "_data_" in v and len(v) == 2:
                    found = self.names.get(v["_type_"])
                    obj[k] = found.decode(v["_data_"]) if found is not None else self._decode_obj(v)
                elif v:
                    self._revive_dict(v)
            elif t is list and v:
                self._revive_list(v)

    def _revive_list(self, obj: list[Any]) -> None:
        for i, v in enumerate(obj):
            t = type(v)
            if t is dict:
                if "_type_" in v and "_data_" in v and len(v) == 2:
                    found = self.names.get(v["_type_"])
                    obj[i] = found.decode(v["_data_"]) if found is not None else self._decode_obj(v)
                elif v:
                    self._revive_dict(v)
            elif t is list and v:
                self._revive_list(v)
