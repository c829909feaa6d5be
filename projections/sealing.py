"""Personal data in the read models, sealed with the store's key.

With `CASECORE_CIPHER_KEY` set the events are encrypted by the library's cipher; the read models folded from
them would still hold names, ID numbers and free text in clear in the same database file and its backups. The
columns that hold them are declared `Sealed`: with a key, each value is stored as

    sealed1:<base64url(nonce | tag | AES-256-GCM ciphertext)>

where the nonce is an HMAC-SHA256 of the plaintext (a synthetic IV): the same plaintext always seals to the
same text, so equality still works in SQL (a primary key on an ID number, `person_id IN (…)`) — the stored form
is a keyed digest for exact search and the encryption in one. It reveals which values are equal, nothing
else; without the key neither the value nor a guess at it can be checked. Reads with the key give the value
back; a value written before sealing (no prefix) is read as it is.

Without a key the columns are exactly what they were (same SQL types, same bytes), so a store without a key
is untouched. With a key a sealed column is TEXT (a sealed value is longer than the clear one): the table's
shape differs, and the projection runner rebuilds the read models from the (encrypted) events.

The key reaches the column types through the engine: `attach_sealer(engine, sealer)` registers it for that
engine's dialect (every `create_engine` makes its own dialect), and the types look it up when they convert a
value. Both keys used here are derived from the store key with HKDF (context `casecore.read-models.v1`), so
the events' key is never used for anything else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import weakref
from datetime import date
from functools import lru_cache
from typing import Any

import orjson
import sqlalchemy as sa
from Crypto.Cipher import AES
from Crypto.Hash import SHA256
from Crypto.Protocol.KDF import HKDF
from sqlalchemy.engine import Engine

PREFIX = "sealed1:"
_AAD = b"casecore.sealed.v1"
#: sealed values kept in memory per process (names and units repeat: actors, cadres, departments) …
CACHE_SIZE = 65536
#: … when they are short: free text and payloads are mostly unique, and would only fill memory
CACHED_LENGTH = 96


class SealError(ValueError):
    """A sealed value does not open with this key (another key, or the value was altered)."""


class Sealer:
    """Deterministic authenticated encryption of text with keys derived from the store key."""

    def __init__(self, store_key: bytes):
        keys = HKDF(store_key, 32, b"", SHA256, num_keys=2, context=b"casecore.read-models.v1")
        self._enc, self._iv = keys[0], keys[1]
        self._sealed = lru_cache(maxsize=CACHE_SIZE)(self._seal)
        self._opened = lru_cache(maxsize=CACHE_SIZE)(self._open)

    @classmethod
    def from_base64(cls, key: str) -> Sealer:
        """From `CASECORE_CIPHER_KEY` (base64 of 16, 24 or 32 bytes, as the events' cipher takes it)."""
        raw = base64.b64decode(key.strip().encode())
        if len(raw) not in (16, 24, 32):
            raise ValueError("CASECORE_CIPHER_KEY 应为 16、24 或 32 字节随机数的 base64")
        return cls(raw)

    def _seal(self, text: str) -> str:
        plain = text.encode()
        nonce = hmac.new(self._iv, plain, hashlib.sha256).digest()[:12]
        cipher = AES.new(self._enc, AES.MODE_GCM, nonce=nonce)
        cipher.update(_AAD)
        body, tag = cipher.encrypt_and_digest(plain)
        return PREFIX + base64.urlsafe_b64encode(nonce + tag + body).decode().rstrip("=")

    def _open(self, stored: str) -> str:
        if not stored.startswith(PREFIX):
            return stored  # written before the store had a key
        data = base64.urlsafe_b64decode(stored[len(PREFIX):] + "=" * (-len(stored) % 4))
        cipher = AES.new(self._enc, AES.MODE_GCM, nonce=data[:12])
        cipher.update(_AAD)
        try:
            return cipher.decrypt_and_verify(data[28:], data[12:28]).decode()
        except ValueError:
            raise SealError("读模型中的加密值无法用当前密钥解开 (密钥不同, 或数据被改动)") from None

    def seal(self, text: str) -> str:
        """The stored form of a value: the same text always gives the same stored form."""
        return self._sealed(text) if len(text) <= CACHED_LENGTH else self._seal(text)

    def open(self, stored: str) -> str:
        """The value back from its stored form (a value stored in clear is returned as it is)."""
        return self._opened(stored) if len(stored) <= 2 * CACHED_LENGTH else self._open(stored)


_SEALERS: weakref.WeakKeyDictionary[sa.Dialect, Sealer] = weakref.WeakKeyDictionary()


def attach_sealer(engine: Engine, sealer: Sealer | None) -> None:
    """Seal the personal columns of every read model written and read through this engine (None: in clear).
    Call it before the engine's first use: SQLAlchemy caches each type's converters per dialect."""
    if sealer is None:
        _SEALERS.pop(engine.dialect, None)
    else:
        _SEALERS[engine.dialect] = sealer


def sealer_of(dialect: sa.Dialect) -> Sealer | None:
    return _SEALERS.get(dialect)


class Sealed(sa.types.TypeDecorator[Any]):
    """A column holding personal data: `kind` "text" (a name, an ID number, free text), "date" or "json".
    Without a key it is the clear type (`String(length)`, `Text`, `Date`, `JSON`); with one, TEXT of sealed
    values."""

    impl = sa.Text
    cache_ok = True

    def __init__(self, kind: str = "text", length: int | None = None):
        super().__init__()
        if kind not in ("text", "date", "json"):
            raise ValueError(kind)
        self.kind = kind
        self.length = length

    def _clear(self) -> sa.types.TypeEngine[Any]:
        if self.kind == "date":
            return sa.Date()
        if self.kind == "json":
            return sa.JSON()
        return sa.String(self.length) if self.length else sa.Text()

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if sealer_of(dialect) is not None:
            return dialect.type_descriptor(sa.Text())
        return dialect.type_descriptor(self._clear())

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        sealer = sealer_of(dialect)
        if sealer is None or value is None:
            return value
        if self.kind == "date":
            text = value.isoformat()
        elif self.kind == "json":
            text = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
        else:
            text = value
        return sealer.seal(text)

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> Any:
        sealer = sealer_of(dialect)
        if sealer is None or value is None:
            return value
        text = sealer.open(value)
        if self.kind == "date":
            return date.fromisoformat(text)
        if self.kind == "json":
            return orjson.loads(text)
        return text
