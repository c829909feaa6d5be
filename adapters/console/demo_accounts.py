"""Demo accounts for the demo county: one person per role, with passwords printed for a newcomer."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from adapters.console.accounts import AccountBook

ACCOUNTS_FILE = "accounts.json"


def demo_people(county: dict[str, Any]) -> list[dict[str, Any]]:
    """One account a role, placed in the demo county's first township and village."""
    code = county["code"]
    township = county["townships"][0]
    village = township["villages"][0]
    return [
        {"login": "cun", "name": f"{village['name']}村干部", "role": "village", "unit": village["code"]},
        {"login": "xiang", "name": f"{township['name']}干部", "role": "township", "unit": township["code"] + "000"},
        {"login": "xian", "name": f"{county['name']}乡村振兴局", "role": "county", "unit": code + "000000"},
        {"login": "bumen", "name": "县医疗保障局", "role": "department", "unit": "县医疗保障局", "scope": code},
        {"login": "ducha", "name": "县督查组", "role": "inspector", "unit": "县督查组", "scope": code},
        {"login": "shenji", "name": "县审计局", "role": "auditor", "unit": "县审计局", "scope": code},
    ]


def write_demo_accounts(output: Path, county: dict[str, Any]) -> tuple[Path, list[dict[str, str]]]:
    """A fresh accounts file in the demo's output folder; returns it and each login with its password."""
    path = output / ACCOUNTS_FILE
    path.unlink(missing_ok=True)
    book = AccountBook(path)
    out = []
    for person in demo_people(county):
        password = secrets.token_urlsafe(9)
        book.add(person["login"], password, name=person["name"], role=person["role"], unit=person["unit"],
                 scope=person.get("scope"))
        out.append({"login": person["login"], "password": password, "name": person["name"], "role": person["role"],
                    "unit": person["unit"]})
    return path, out
