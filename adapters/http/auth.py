"""Bearer tokens bound to actors, and what each caller may see.

The tokens file is JSON: an object mapping each token (or `sha256:<hex digest of the token>`, so the file
need not hold the secret itself) to the actor it stands for and, optionally, its reach:

    {"tok-village-1": {"id": "v-cadre-1", "name": "村干部甲", "role": "village", "unit": "522631101001"},
     "sha256:9f86…": {"id": "ybj", "name": "医保局", "role": "department", "unit": "黔东南州医保局",
                      "scope": "5226", "personal_data": true}}

Reach (`scope`, a division-code prefix; "" is everywhere):
- a unit that is an area (a division code) reaches its own jurisdiction (`casecore.authority.jurisdiction_prefix`);
  `scope` may narrow it, never widen it;
- a unit that is not an area (a department, an inspection team, an audit office) must name its `scope`,
  except auditors and the system, who reach everywhere unless a scope is given.

Personal data (members' ID numbers and names) is shown to village, township and county cadres and to
auditors; departments, inspectors and the system see it masked unless their entry says `"personal_data": true`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from casecore.authority import AREA_POSTS, jurisdiction_prefix, unit_fits_role
from casecore.commands import Actor
from casecore.values import Role

ENTITLED_BY_DEFAULT = frozenset({Role.VILLAGE, Role.TOWNSHIP, Role.COUNTY, Role.AUDITOR})
EVERYWHERE_BY_DEFAULT = frozenset({Role.AUDITOR, Role.SYSTEM})
#: roles whose reach must be written down: an empty scope would make them reach the whole country
SCOPE_REQUIRED = frozenset({Role.DEPARTMENT, Role.INSPECTOR})
_LEVEL_NAMES = {12: "村 (12 位区划代码, 如 522631101001)", 9: "乡镇 (如 522631101000)", 6: "县 (如 522631000000)"}


class TokenEntry(BaseModel):
    """One line of the tokens file: the actor, and optionally its scope and personal-data entitlement."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    name: str | None = None
    role: Role
    unit: str = Field(min_length=1)
    scope: str | None = Field(default=None, pattern=r"^\d{0,12}$")
    personal_data: bool | None = None


@dataclass(frozen=True)
class Principal:
    """The caller behind a token: the actor its commands must carry, where it reaches, what it may read."""

    actor: Actor
    scope: str
    personal_data: bool

    def reaches(self, division_code: str | None) -> bool:
        """True when a case in `division_code` is inside the caller's reach."""
        if division_code is None:
            return self.scope == ""
        return division_code.startswith(self.scope)

    def same_actor(self, other: Actor) -> bool:
        """The command's actor is the token's: same id, role and unit (a name, when given, must match too)."""
        a = self.actor
        return (other.id == a.id and other.role == a.role and other.unit == a.unit
                and (other.name is None or a.name is None or other.name == a.name))


class TokenFileError(ValueError):
    """The tokens file cannot be used; the message says which entry and why."""


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def principal_of(entry: TokenEntry, label: str) -> Principal:
    actor = Actor(id=entry.id, name=entry.name, role=entry.role, unit=entry.unit)
    if not unit_fits_role(entry.role, entry.unit):
        raise TokenFileError(
            f"令牌 {label}: 角色 {entry.role.value} 与单位 {entry.unit!r} 不符; "
            f"{entry.role.label}的单位应为{_LEVEL_NAMES[AREA_POSTS[entry.role]]}"
        )
    if entry.role in SCOPE_REQUIRED and entry.scope == "":
        raise TokenFileError(
            f"令牌 {label}: {entry.role.label}的 \"scope\" 不能为空 (空即全国); "
            "请写明可查看的区划代码前缀 (如 \"5226\")"
        )
    area = jurisdiction_prefix(entry.unit)
    if area is not None:
        scope = entry.scope if entry.scope is not None else area
        if not scope.startswith(area):
            raise TokenFileError(f"令牌 {label}: scope {scope!r} 超出单位 {entry.unit} 的辖区 {area!r}")
    elif entry.scope is not None:
        scope = entry.scope
    elif entry.role in EVERYWHERE_BY_DEFAULT:
        scope = ""
    else:
        raise TokenFileError(
            f"令牌 {label}: 单位 {entry.unit!r} 不是区划代码, 请用 \"scope\" 写明可查看的区划代码前缀 (如 \"52\")"
        )
    entitled = entry.personal_data if entry.personal_data is not None else entry.role in ENTITLED_BY_DEFAULT
    return Principal(actor=actor, scope=scope, personal_data=entitled)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are all different: with a key given twice, `json` keeps the last one silently,
    and a token (or its role) would not be what the file seems to say."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            shown = "sha256:…" if key.startswith("sha256:") else (key if key in TokenEntry.model_fields else "令牌")
            raise TokenFileError(f"令牌文件中 {shown!s} 重复出现; 每个令牌只能登记一次, 每项只能写一次")
        out[key] = value
    return out


class TokenBook:
    """Tokens (kept only as SHA-256 digests) → principals."""

    def __init__(self, entries: dict[str, Principal]):
        self._by_digest = entries

    def __len__(self) -> int:
        return len(self._by_digest)

    @classmethod
    def from_mapping(cls, data: Any) -> TokenBook:
        if not isinstance(data, dict) or not data:
            raise TokenFileError("令牌文件应为非空 JSON 对象: {\"令牌\": {\"id\", \"name\", \"role\", \"unit\"}, …}")
        out: dict[str, Principal] = {}
        for n, (token, raw) in enumerate(data.items(), start=1):
            label = f"#{n}"
            try:
                entry = TokenEntry.model_validate(raw)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(x) for x in first["loc"]) or "entry"
                raise TokenFileError(f"令牌 {label} ({raw.get('id') if isinstance(raw, dict) else '?'}): "
                                     f"{where}: {first['msg']}") from None
            if token.startswith("sha256:"):
                digest = token.removeprefix("sha256:").lower()
                if len(digest) != 64 or any(ch not in "0123456789abcdef" for ch in digest):
                    raise TokenFileError(f"令牌 {label}: sha256: 后应为64位十六进制摘要")
            else:
                if len(token) < 8:
                    raise TokenFileError(f"令牌 {label} ({entry.id}): 令牌太短, 至少8个字符")
                digest = _digest(token)
            out[digest] = principal_of(entry, f"{label} ({entry.id})")
        return cls(out)

    @classmethod
    def from_file(cls, path: Path) -> TokenBook:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"), object_pairs_hook=_unique_keys)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise TokenFileError(f"无法读取令牌文件 {path}: {exc}") from None
        return cls.from_mapping(data)

    def lookup(self, token: str) -> Principal | None:
        # looked up by digest: timing can reveal only digest prefixes, which say nothing about the token
        return self._by_digest.get(_digest(token))
