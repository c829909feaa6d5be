"""The console's accounts file: who may log in, as which actor, with which second factor.

The file is JSON (`casecore accounts add` writes it; an operator never needs to edit it by hand):

    {"totp_required_roles": ["county", "auditor"],
     "accounts": {"lisi": {"id": "lisi", "name": "李四", "role": "village", "unit": "522631101001",
                           "scope": null, "personal_data": null,
                           "password_hash": "$argon2id$…", "totp_secret": null, "totp_last_step": null,
                           "failures": 0, "locked_until": null}}}

Passwords are kept only as argon2id hashes. An account's reach and personal-data entitlement follow the
HTTP API's tokens exactly (`adapters.http.auth.principal_of`). Five wrong passwords or second-factor codes in a
row lock the account for `LOCK_MINUTES`; `casecore accounts unlock` lifts it.
"""

from __future__ import annotations

import hmac
import json
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adapters.http.auth import Principal, TokenEntry, TokenFileError, principal_of
from casecore.commands import Id, Name, Unit
from casecore.limits import ID_MAX
from casecore.values import Role

#: wrong passwords in a row that lock an account, and for how long
MAX_FAILURES = 5
LOCK_MINUTES = 15
MIN_PASSWORD = 8



class AccountError(ValueError):
    """The accounts file or an account cannot be used; the message says why, in a sentence to act on."""


def _totp_step(totp: Any, code: str, now: datetime) -> int | None:
    """The time step whose code this is (the current one or either neighbour, for a clock a little off), or
    None."""
    current = int(totp.timecode(now))
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(str(totp.generate_otp(step)), str(code)):
            return step
    return None


def _invalid(login: str, exc: ValidationError) -> AccountError:
    """The first thing wrong with an account, as a sentence naming its field."""
    first = exc.errors()[0]
    where = ".".join(str(x) for x in first["loc"])
    return AccountError(f"账号 {login}: {where}: {first['msg']}")


class Account(BaseModel):
    """One login: the actor it acts as, its reach, its password hash and second factor, its lock state."""

    model_config = ConfigDict(extra="forbid")

    #: the contract's limits of an actor's fields: the account acts as that actor in every command
    id: Id
    name: Name
    role: Role
    unit: Unit
    scope: str | None = Field(default=None, pattern=r"^\d{0,12}$")
    personal_data: bool | None = None
    password_hash: str
    totp_secret: str | None = None
    #: the time step of the last second-factor code that logged in: no code of that step or before is taken
    #: again (RFC 6238 §5.2), so a code seen over a shoulder does not open a second session
    totp_last_step: int | None = None
    failures: int = 0
    locked_until: datetime | None = None

    def principal(self, login: str) -> Principal:
        entry = TokenEntry(id=self.id, name=self.name, role=self.role, unit=self.unit, scope=self.scope,
                           personal_data=self.personal_data)
        try:
            return principal_of(entry, login)
        except TokenFileError as exc:
            raise AccountError(str(exc).replace("令牌", "账号")) from None


@dataclass(frozen=True)
class LoginResult:
    """What a login attempt came to: the account's principal, or the sentence to show."""

    principal: Principal | None
    message: str = ""
    needs_totp: bool = False


class AccountBook:
    """The accounts file, read and written under one lock (the console and the CLI change lock state)."""

    def __init__(self, path: Path, hasher: PasswordHasher | None = None):
        self.path = Path(path)
        self._lock = threading.Lock()
        #: argon2id with the library's defaults (RFC 9106 low-memory profile); a stored hash carries its own
        #: parameters, so a cheaper hasher (tests) only changes the hashes it writes
        self.hasher = hasher or PasswordHasher()

    # ------------------------------------------------------------------ file

    def _read(self) -> dict[str, Any]:
        if not self.path.exists():
            return {"totp_required_roles": [], "accounts": {}}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise AccountError(f"无法读取账号文件 {self.path}: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("accounts", {}), dict):
            raise AccountError(f"账号文件 {self.path} 格式不对; 请用 casecore accounts add 重新生成")
        data.setdefault("accounts", {})
        data.setdefault("totp_required_roles", [])
        return data

    def _write(self, data: dict[str, Any]) -> None:
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
        os.chmod(tmp, 0o600)
        tmp.replace(self.path)

    def accounts(self) -> dict[str, Account]:
        data = self._read()
        out = {}
        for login, raw in data["accounts"].items():
            try:
                out[login] = Account.model_validate(raw)
            except ValidationError as exc:
                raise _invalid(login, exc) from None
        return out

    def totp_required_roles(self) -> set[str]:
        return set(self._read()["totp_required_roles"])

    def check(self) -> int:
        """Every account parses and reaches somewhere; returns how many there are."""
        accounts = self.accounts()
        for login, account in accounts.items():
            account.principal(login)
        return len(accounts)

    # ------------------------------------------------------------------ operator's commands

    def add(self, login: str, password: str, *, name: str, role: str, unit: str, scope: str | None = None,
            personal_data: bool | None = None, totp: bool = False, actor_id: str | None = None) -> Account:
        """Add or replace an account; returns it (with its TOTP secret when asked for one)."""
        import pyotp

        if not login or not login.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise AccountError(f"登录名 {login!r} 只能由字母、数字、- _ . 组成")
        if len(login) > ID_MAX:  # as an actor's id: the read-access log keeps it in a column that long
            raise AccountError(f"登录名长度 {len(login)} 超过上限 {ID_MAX} 个字符; 请用短一些的登录名")
        if len(password) < MIN_PASSWORD:
            raise AccountError(f"密码至少 {MIN_PASSWORD} 个字符")
        try:
            account = Account(id=actor_id or login, name=name, role=Role(role), unit=unit, scope=scope,
                              personal_data=personal_data, password_hash=self.hasher.hash(password),
                              totp_secret=pyotp.random_base32() if totp else None)
        except ValidationError as exc:
            raise _invalid(login, exc) from None
        except ValueError as exc:
            raise AccountError(f"账号 {login}: {exc}".splitlines()[0]) from None
        account.principal(login)  # reach must make sense before it is stored
        with self._lock:
            data = self._read()
            data["accounts"][login] = account.model_dump(mode="json")
            self._write(data)
        return account

    def remove(self, login: str) -> None:
        with self._lock:
            data = self._read()
            if data["accounts"].pop(login, None) is None:
                raise AccountError(f"没有账号 {login}")
            self._write(data)

    def unlock(self, login: str) -> None:
        self._update(login, failures=0, locked_until=None)

    def require_totp_for(self, roles: list[str]) -> None:
        for r in roles:
            Role(r)
        with self._lock:
            data = self._read()
            data["totp_required_roles"] = sorted(set(roles))
            self._write(data)

    def _update(self, login: str, **fields: Any) -> None:
        with self._lock:
            data = self._read()
            if login not in data["accounts"]:
                raise AccountError(f"没有账号 {login}")
            data["accounts"][login].update({k: (v.isoformat() if isinstance(v, datetime) else v)
                                            for k, v in fields.items()})
            self._write(data)

    # ------------------------------------------------------------------ logging in

    def login(self, login: str, password: str, code: str | None = None, now: datetime | None = None) -> LoginResult:
        """Check a password (and the second factor when the account has one or its role requires one)."""
        import pyotp

        now = now or datetime.now(UTC)
        wrong = LoginResult(None, f"登录名或密码不正确; 连续输错 {MAX_FAILURES} 次账号将被锁定")
        with self._lock:
            data = self._read()
            raw = data["accounts"].get(login)
            if raw is None:
                self.hasher.hash(password)  # the same work as for a real account: timing does not tell logins apart
                return wrong
            account = Account.model_validate(raw)
            if account.locked_until is not None and account.locked_until > now:
                return LoginResult(None, f"账号已被锁定至 {account.locked_until:%H:%M} (UTC); "
                                         "请稍后再试, 或请管理员执行 casecore accounts unlock")
            try:
                self.hasher.verify(account.password_hash, password)
            except (VerificationError, InvalidHashError):
                return self._failed(data, raw, now) or wrong
            required = account.role.value in set(data["totp_required_roles"])
            if account.totp_secret is None and required:
                return LoginResult(None, f"{account.role.label}账号须启用动态口令; "
                                         f"请管理员执行 casecore accounts add {login} --totp 重新设置")
            if account.totp_secret is not None:
                if not code:
                    return LoginResult(None, "请输入动态口令 (6位数字)", needs_totp=True)
                step = _totp_step(pyotp.TOTP(account.totp_secret), code, now)
                if step is None or (account.totp_last_step is not None and step <= account.totp_last_step):
                    # a wrong code counts as a wrong password: otherwise whoever holds the password may try
                    # the million codes without end
                    return self._failed(data, raw, now) or LoginResult(
                        None, "动态口令不正确、已过期或已用过; 请输入验证器上当前的6位数字", needs_totp=True)
                raw["totp_last_step"] = step
            if account.failures or account.locked_until or raw.get("totp_last_step") != account.totp_last_step:
                raw["failures"] = 0
                raw["locked_until"] = None
                self._write(data)
        return LoginResult(account.principal(login))

    def _failed(self, data: dict[str, Any], raw: dict[str, Any], now: datetime) -> LoginResult | None:
        """Count one wrong password or code (under the lock); the lock's sentence when this one locks the
        account, else None."""
        failures = int(raw.get("failures") or 0) + 1
        raw["failures"] = failures
        if failures >= MAX_FAILURES:
            raw["locked_until"] = (now + timedelta(minutes=LOCK_MINUTES)).isoformat()
            raw["failures"] = 0
            self._write(data)
            return LoginResult(None, f"密码或动态口令连续输错 {MAX_FAILURES} 次, 账号已锁定 {LOCK_MINUTES} 分钟; "
                                     "请稍后再试, 或请管理员执行 casecore accounts unlock")
        self._write(data)
        return None
