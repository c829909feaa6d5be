"""Who may use the demo county through `casecore serve`: one bearer token per role, written to
`<output>/tokens.json` (the format `adapters.http.auth` reads), each with what it may do.

Tokens are random on every run (`secrets`), never derived from the seed: a file that leaks from one run opens
nothing of the next. Each entry is consistent with its role: a village token acts for a real village of the
county, a township token for a 9-digit township, the county for its 6-digit code; a department, the
inspection team and the audit office name their unit and a scope (the county).

`Access` is the list the demo's summary prints; other ways in (login accounts) add their own `Access` rows.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from casecore.authority import ROLES
from casecore.commands import LABELS
from casecore.values import Role


@dataclass(frozen=True)
class Access:
    """One way in: what it is (`kind`: 令牌 …), the secret, who it acts as, where it reaches, what it may do."""

    kind: str
    secret: str
    actor: dict[str, Any]
    scope: str

    @property
    def role(self) -> Role:
        return Role(self.actor["role"])

    def may(self) -> str:
        """The commands this role may give, by their Chinese labels (from the authority table)."""
        commands = [LABELS[c] for c, roles in ROLES.items() if self.role in roles]
        return "、".join(commands) if commands else "只读"


def _token() -> str:
    return "demo-" + secrets.token_urlsafe(18)


def county_tokens(county: dict[str, Any]) -> list[Access]:
    """One token per role for the demo county (`ctx.shared["county"]`: code, name, townships with villages)."""
    code, name = county["code"], county["name"]
    township = county["townships"][0]
    village = next(v for v in township["villages"] if not v["name"].endswith("社区")) \
        if any(not v["name"].endswith("社区") for v in township["villages"]) else township["villages"][0]
    people = [
        {"id": "demo-village", "name": f"{village['name']}干部", "role": Role.VILLAGE.value, "unit": village["code"]},
        {"id": "demo-township", "name": f"{township['name']}干部", "role": Role.TOWNSHIP.value,
         "unit": township["code"]},
        {"id": "demo-county", "name": f"{name}乡村振兴局", "role": Role.COUNTY.value, "unit": code},
        {"id": "demo-department", "name": f"{name}医疗保障局", "role": Role.DEPARTMENT.value,
         "unit": f"{name}医疗保障局", "scope": code},
        {"id": "demo-inspector", "name": "县督查组", "role": Role.INSPECTOR.value, "unit": f"{name}督查组",
         "scope": code},
        {"id": "demo-auditor", "name": "县审计局", "role": Role.AUDITOR.value, "unit": f"{name}审计局", "scope": code},
    ]
    out = []
    for p in people:
        scope = p.get("scope") or p["unit"]
        actor = {k: v for k, v in p.items() if k != "scope"}
        out.append(Access("令牌", _token(), actor, scope))
    return out


def write_tokens(path: Path, tokens: list[Access]) -> Path:
    """The tokens file `casecore serve --tokens` reads: token → actor (with its scope where the unit is not an
    area). Written readable by its owner only: it holds the secrets."""
    data: dict[str, dict[str, Any]] = {}
    for t in tokens:
        entry = dict(t.actor)
        if not entry["unit"].isdigit():
            entry["scope"] = t.scope
        data[t.secret] = entry
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path
