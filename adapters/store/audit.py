"""The auditor's check: recompute every hash from the stored rows and name what was changed behind the
engine's back; roll the stream heads up into a digest per day that the auditor keeps outside the system.

What is checked (see `adapters.store.hashchain` for what is hashed):

- every event row against its own hash row: `altered` (content differs), `inserted` (no hash row: the
  engine never wrote it), `reordered` (its content is the one hashed for another version or position of
  the same stream — versions swapped, a row moved in the global order);
- every hash row against the stored events: `deleted` (no event row holds it any more);
- the hash rows of a stream against each other: `chain_broken` (a hash row's `prev_hash` is not the hash of
  the version before it — an event and its hash rewritten together, or a hash row removed);
- the snapshots (outside the chain; `adapters.store.snapshot_store.verify`): every snapshot against the state its
  stream's events fold into at its version: `snapshot_altered`, `snapshot_unreadable`;
- with a checkpoint: each day's digest recomputed over the events at or below the checkpoint's position:
  `day_changed`, `day_missing`, `day_added` catch even a rewrite that recomputed the whole hash table, and
  `backdated` an event written after the checkpoint that claims an earlier recorded time;
- recorded times within a stream: `time_backwards`;
- the keyed chain across the log (`_Keying`): `unkeyed`, `key_unknown`, `stale_key`;
- signed checkpoints (Ed25519, the auditor's key): `checkpoint_forged`.

Another chained table (the console's read-access log, say) is checked the same way: its rows as `AuditRow`s
grouped by stream through `check_stream`, and its hash rows through `_Keying`.

A day is the UTC date on which the engine recorded the event (the recorder's clock, stored in the hash row
and covered by the hash). A day's digest is SHA-256 over the day's stream heads (stream, version and the
recomputed chain hash of each stream's last event recorded that day, streams in byte order); since every
chain hash covers all earlier events of its stream, the heads cover the day. The overall digest chains the
days in order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import groupby
from typing import Any

from adapters.store.hashchain import (
    GENESIS,
    AuditRow,
    ChainKeys,
    HashedRecorder,
    HashRow,
    Unverifiable,
    event_hash,
    key_of,
    recompute,
)

CHECKPOINT_FORMAT = "casecore.audit-checkpoint.v1"

KIND_LABELS = {
    "altered": "内容被篡改",
    "deleted": "被删除",
    "reordered": "顺序被调换",
    "inserted": "非系统写入",
    "chain_broken": "哈希链断裂",
    "day_changed": "日摘要与检查点不符",
    "day_missing": "检查点中的日期已无记录",
    "day_added": "检查点后出现更早的记录",
    "digest_changed": "总摘要与检查点不符",
    "snapshot_altered": "快照与事件重放不符",
    "snapshot_unreadable": "快照无法读取",
    "unreadable": "记录无法核验",
    "time_backwards": "记录时间倒流",
    "unkeyed": "无密钥写入",
    "key_unknown": "未知密钥",
    "stale_key": "使用已轮换的旧密钥",
    "backdated": "倒签入已检查的日期",
    "checkpoint_forged": "检查点签名无效",
}


@dataclass(frozen=True)
class Tampering:
    """One thing the store shows that the engine did not write."""

    kind: str
    detail: str
    stream: str | None = None
    version: int | None = None
    position: int | None = None
    topic: str | None = None
    day: str | None = None

    @property
    def label(self) -> str:
        return KIND_LABELS.get(self.kind, self.kind)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None} | {"label": self.label}


@dataclass
class DayDigest:
    day: str
    events: int
    streams: int
    first_position: int
    last_position: int
    digest: str


#: how far apart the recorded times of two writers' commits may lie (each stamps its events when it decides,
#: and commits in turn): an event after a checkpoint recorded earlier than that is back-dated
CLOCK_TOLERANCE = timedelta(minutes=5)


@dataclass
class AuditReport:
    events: int = 0
    streams: int = 0
    through_position: int = 0
    #: the latest recorded time among the events at or below `through_position`
    last_recorded_at: str = ""
    findings: list[Tampering] = field(default_factory=list)
    days: dict[str, DayDigest] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def digest(self) -> str:
        return overall_digest(self.days.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events": self.events,
            "streams": self.streams,
            "through_position": self.through_position,
            "digest": self.digest,
            "findings": [f.as_dict() for f in self.findings],
        }


def _digest_parts(*parts: str) -> bytes:
    return b"".join(len(p.encode()).to_bytes(8, "big") + p.encode() for p in parts)


def overall_digest(days: Iterable[DayDigest]) -> str:
    h = hashlib.sha256(b"casecore.audit-digest.v1")
    for d in sorted(days, key=lambda d: d.day):
        h.update(_digest_parts(d.day, str(d.events), d.digest))
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------------- one stream


def _content_matches(sid: str, row: AuditRow, h: HashRow, keys: ChainKeys | None = None) -> bool:
    """Whether the row holds the content its hash row was computed over (plain or keyed, as the hash row
    says). A hash of a key the verifier does not hold is not checked here: the audit names that key."""
    assert row.topic is not None and row.state is not None
    try:
        return recompute(h.hash, keys, h.prev_hash, sid, h.originator_version, h.position, h.recorded_at,
                         row.topic, row.state) == h.hash
    except Unverifiable:
        return True


def check_stream(sid: str, rows: list[AuditRow], keys: ChainKeys | None = None) -> list[Tampering]:
    """Name every event of one stream that the engine did not write as it stands."""
    events = [r for r in rows if r.position is not None]
    hashes = {r.hashed.originator_version: r.hashed for r in rows if r.hashed is not None}
    findings: list[Tampering] = []
    claimed: set[int] = set()  # hash rows whose content was found elsewhere in the stream

    def _matches(sid: str, row: AuditRow, h: HashRow) -> bool:
        return _content_matches(sid, row, h, keys)

    intact = {r.originator_version for r in events
              if (h := hashes.get(r.originator_version)) is not None and _matches(sid, r, h)}
    for r in events:
        v, p = r.originator_version, r.position
        own = hashes.get(v)
        if v in intact:
            if own.position != p:  # type: ignore[union-attr]
                claimed.add(v)
                findings.append(Tampering("reordered", f"事件在总序中的位置由 {own.position} 被改为 {p}",  # type: ignore[union-attr]
                                          sid, v, p, r.topic))
            continue
        # content that belongs to another version whose own row no longer holds it: moved, not forged
        found = next((h for h in _candidates(hashes, own, p)
                      if h.originator_version not in intact and _matches(sid, r, h)), None)
        if found is not None:
            claimed.add(found.originator_version)
            findings.append(Tampering(
                "reordered",
                f"原为第 {found.originator_version} 版 (位置 {found.position}) 的事件, 现存为第 {v} 版 (位置 {p})",
                sid, v, p, r.topic))
        elif own is not None:
            findings.append(Tampering("altered", f"第 {v} 版事件的内容与记录时的哈希不符 (记录于 {own.recorded_at})",
                                      sid, v, p, r.topic))
        else:
            copy = next((h.originator_version for h in hashes.values() if _matches(sid, r, h)), None)
            what = f"与第 {copy} 版内容相同的副本" if copy is not None else "没有哈希记录"
            findings.append(Tampering("inserted", f"第 {v} 版事件{what}: 不是由系统写入的", sid, v, p, r.topic))

    present = {r.originator_version for r in events}
    top = max([*present, *hashes], default=0)
    for v in range(1, top + 1):
        if v in present or v in claimed:
            continue
        h = hashes.get(v)
        if h is not None:
            findings.append(Tampering(
                "deleted", f"第 {v} 版事件 (位置 {h.position}, 记录于 {h.recorded_at}) 已不在库中", sid, v, h.position))
        else:
            findings.append(Tampering("deleted", f"第 {v} 版事件及其哈希记录均已不在库中", sid, v))

    ordered = sorted(hashes.values(), key=lambda h: h.originator_version)
    previous: HashRow | None = None
    for h in ordered:
        if previous is None:
            expected = GENESIS if h.originator_version == 1 else None
        elif previous.originator_version == h.originator_version - 1:
            expected = previous.hash
        else:
            expected = None  # a gap: already named as deleted above
        if expected is not None and h.prev_hash != expected:
            before = h.originator_version - 1
            findings.append(Tampering(
                "chain_broken",
                f"第 {h.originator_version} 版记录的前序哈希与第 {before} 版不符: 第 {before} 版事件连同其哈希被改写",
                sid, before, hashes[before].position if before in hashes else None))
        previous = h
    findings.extend(_backwards(sid, ordered))
    return findings


def _backwards(sid: str, ordered: list[HashRow]) -> Iterator[Tampering]:
    """Recorded times never go backwards within a stream (the engine stamps an event no earlier than the one
    before it): a later version recorded earlier was back-dated or moved behind the engine's back."""
    latest: tuple[datetime, HashRow] | None = None
    for h in ordered:
        try:
            moment = datetime.fromisoformat(h.recorded_at)
            if moment.tzinfo is None:
                continue
        except ValueError:
            continue
        if latest is not None and moment < latest[0]:
            yield Tampering("time_backwards", f"第 {h.originator_version} 版记录于 {h.recorded_at}, 早于第 "
                            f"{latest[1].originator_version} 版的 {latest[1].recorded_at}: 记录时间倒流",
                            sid, h.originator_version, h.position)
        if latest is None or moment > latest[0]:
            latest = (moment, h)


def _backdated(sid: str, rows: list[AuditRow], through: int, before: datetime) -> Iterator[Tampering]:
    for r in rows:
        h = r.hashed
        if h is None or h.position <= through:
            continue
        try:
            moment = datetime.fromisoformat(h.recorded_at)
        except ValueError:
            continue
        if moment.tzinfo is not None and moment < before:
            yield Tampering("backdated", f"第 {h.originator_version} 版写在检查点 (位置 ≤ {through}) 之后, 记录时间 "
                            f"{h.recorded_at} 却早于检查点所含的最后记录时间: 倒签入已检查的历史",
                            sid, h.originator_version, h.position)


def _candidates(hashes: dict[int, HashRow], own: HashRow | None, position: int | None) -> Iterator[HashRow]:
    """Other hash rows of the stream the content may belong to: the one at the same position first."""
    by_position = next((h for h in hashes.values() if h.position == position and h is not own), None)
    if by_position is not None:
        yield by_position
    for h in hashes.values():
        if h is not own and h is not by_position:
            yield h


# ---------------------------------------------------------------------------------------------------- whole store


class _Days:
    """Per-day digests over the recomputed stream heads, fed stream by stream in byte order."""

    def __init__(self) -> None:
        self.hashers: dict[str, Any] = {}
        self.counts: dict[str, list[int]] = {}  # day -> [events, streams, first position, last position]

    def add_stream(self, sid: str, chain: list[tuple[str, int, int, str]]) -> None:
        heads: dict[str, tuple[int, str]] = {}
        for day, version, position, h in chain:
            c = self.counts.setdefault(day, [0, 0, position, position])
            c[0] += 1
            c[2] = min(c[2], position)
            c[3] = max(c[3], position)
            if day not in heads or version > heads[day][0]:
                heads[day] = (version, h)
        for day, (version, h) in heads.items():
            hasher = self.hashers.setdefault(day, hashlib.sha256(b"casecore.audit-day.v1" + day.encode()))
            hasher.update(_digest_parts(sid, str(version), h))
            self.counts[day][1] += 1

    def result(self) -> dict[str, DayDigest]:
        return {day: DayDigest(day, c[0], c[1], c[2], c[3], self.hashers[day].hexdigest())
                for day, c in sorted(self.counts.items())}


class _Keying:
    """The keyed chain across the whole log, from the keys each hash row names (`key_usage`): once a keyed
    row exists, every row above it must be keyed (`unkeyed`: written by someone without the key); every key
    must be one the auditor holds (`key_unknown`: another key — casecore run with someone else's key file);
    a key may not be used above the first row of a newer key (`stale_key`: a retired key reused)."""

    def __init__(self, usage: list[tuple[str | None, int, int, int]], keys: ChainKeys | None):
        self.first_keyed = min((low for k, low, _, _ in usage if k is not None), default=None)
        #: the auditor's word for when keying began (the oldest key's `from`): a plain row recorded since then
        #: was not written by the engine, even if no keyed row is left above it (a whole chain recomputed)
        self.keyed_since = min((k.since for k in keys.keys if k.since > date.min), default=None) if keys else None
        self.findings: list[Tampering] = []
        known = {k.id: k for k in keys.keys} if keys is not None else {}
        for key_id, low, high, rows in usage:
            if key_id is not None and key_id not in known:
                self.findings.append(Tampering(
                    "key_unknown", f"{rows} 条哈希 (位置 {low}–{high}) 以密钥 {key_id!r} 计算, 核验方没有这个密钥: "
                    "由持有其他密钥者写入, 或核验时未提供全部链密钥 (--chain-key-file)"))
        used = {k: low for k, low, _, _ in usage if k in known}
        #: a key's rows must lie below this position: the first row of any newer key
        self.retired_at = {k: min((used[n] for n in used if known[n].since > known[k].since), default=None)
                           for k in used}

    def check(self, sid: str, h: HashRow) -> Tampering | None:
        key_id = key_of(h.hash)
        if key_id is None:
            if self.first_keyed is not None and h.position > self.first_keyed:
                return Tampering("unkeyed", f"第 {h.originator_version} 版的哈希未用链密钥, 却写在启用密钥之后 "
                                 f"(位置 {self.first_keyed} 起): 由不持有密钥者写入", sid, h.originator_version,
                                 h.position)
            if self.keyed_since is not None and h.recorded_at[:10] >= self.keyed_since.isoformat():
                return Tampering("unkeyed", f"第 {h.originator_version} 版记录于 {h.recorded_at[:10]}, 链密钥自 "
                                 f"{self.keyed_since} 起启用, 其哈希却未用密钥: 由不持有密钥者写入",
                                 sid, h.originator_version, h.position)
            return None
        retired = self.retired_at.get(key_id)
        if retired is not None and h.position > retired:
            return Tampering("stale_key", f"第 {h.originator_version} 版以密钥 {key_id!r} 计算, 但位置 {retired} "
                             "起已换用更新的密钥", sid, h.originator_version, h.position)
        return None


def audit(recorder: HashedRecorder, through_position: int | None = None, keys: ChainKeys | None = None,
          backdated_before: datetime | None = None) -> AuditReport:
    """Verify every stored row and compute the day digests over the events at or below `through_position`
    (all of them when None). `keys`: the chain keys (all of them, old ones too); without them a keyed store
    reports its keys as unknown. `backdated_before` (from a checkpoint): an event above `through_position`
    recorded before it was back-dated into the checkpointed history."""
    report = AuditReport()
    days = _Days()
    limit = float("inf") if through_position is None else through_position
    highest = 0
    keying = _Keying(recorder.key_usage(), keys)
    report.findings.extend(keying.findings)
    for sid, group in groupby(recorder.iter_audit_rows(), key=lambda r: r.originator_id):
        rows = list(group)
        try:
            report.findings.extend(check_stream(sid, rows, keys))
            report.findings.extend(f for r in rows if r.hashed is not None
                                   and (f := keying.check(sid, r.hashed)) is not None)
            if backdated_before is not None and through_position is not None:
                report.findings.extend(_backdated(sid, rows, through_position, backdated_before))
        except Exception as exc:  # no tampering may stop the audit: name the stream and go on
            report.findings.append(Tampering("unreadable", f"此流的记录无法核验 ({type(exc).__name__}: {exc})"[:300],
                                             sid))
        chain: list[tuple[str, int, int, str]] = []
        h = GENESIS
        counted = False
        for r in rows:
            if r.position is None:
                continue
            assert r.topic is not None and r.state is not None
            recorded_at = r.hashed.recorded_at if r.hashed is not None else ""
            h = event_hash(h, sid, r.originator_version, r.position, recorded_at, r.topic, r.state)
            report.events += 1
            counted = True
            highest = max(highest, r.position)
            if r.position <= limit:
                report.last_recorded_at = max(report.last_recorded_at, recorded_at)
                chain.append((recorded_at[:10] or "unknown", r.originator_version, r.position, h))
        report.streams += counted
        days.add_stream(sid, chain)
    report.days = days.result()
    report.through_position = highest if through_position is None else through_position
    report.findings.sort(key=lambda f: (f.position is None, f.position or 0, f.stream or "", f.version or 0))
    return report


# ---------------------------------------------------------------------------------------------------- checkpoints


def checkpoint_document(report: AuditReport, source: str) -> dict[str, Any]:
    """What the auditor keeps outside the system."""
    return {
        "format": CHECKPOINT_FORMAT,
        "source": source,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "through_position": report.through_position,
        "events": sum(d.events for d in report.days.values()),
        "streams": report.streams,
        "digest": report.digest,
        "days": [asdict(d) for d in report.days.values()],
        "last_recorded_at": report.last_recorded_at,
        "verified": report.ok,
    }


def backdated_before(checkpoint: dict[str, Any]) -> datetime | None:
    """Events written after the checkpoint may not be recorded before this (None: an older checkpoint)."""
    try:
        return datetime.fromisoformat(checkpoint["last_recorded_at"]) - CLOCK_TOLERANCE
    except (KeyError, TypeError, ValueError):
        return None


class CheckpointError(ValueError):
    """The checkpoint file is not one `casecore audit checkpoint` wrote."""


def read_checkpoint(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"不是 casecore 审计检查点文件 (format 应为 {CHECKPOINT_FORMAT})")
    for key in ("through_position", "digest", "days"):
        if key not in data:
            raise CheckpointError(f"检查点文件缺少 {key}")
    return data


def compare_checkpoint(report: AuditReport, checkpoint: dict[str, Any]) -> list[Tampering]:
    """Day by day: what changed among the events the checkpoint covered. `report` must have been computed
    with the checkpoint's `through_position`."""
    findings: list[Tampering] = []
    kept = {d["day"]: d for d in checkpoint["days"]}
    for day, then in kept.items():
        now = report.days.get(day)
        if now is None:
            findings.append(Tampering("day_missing", f"检查点记有 {day} 记录的 {then['events']} 条事件 (位置 "
                                      f"{then['first_position']}–{then['last_position']}), 现已全部不在库中", day=day))
        elif now.digest != then["digest"]:
            findings.append(Tampering(
                "day_changed",
                f"{day} 记录的事件已被改动: 检查点时 {then['events']} 条 (位置 {then['first_position']}–"
                f"{then['last_position']}), 现为 {now.events} 条 (位置 {now.first_position}–{now.last_position})",
                day=day))
    for day, now in report.days.items():
        if day not in kept:
            findings.append(Tampering("day_added", f"{day} 记录的 {now.events} 条事件位于检查点范围内, 但检查点中没有",
                                      day=day))
    if not findings and report.digest != checkpoint["digest"]:
        findings.append(Tampering("digest_changed", "总摘要与检查点不符"))
    return findings


# ---------------------------------------------------------------------------------------------------- signatures

SIGNATURE_ALG = "Ed25519"


class SigningKeyError(ValueError):
    """A signing or public key file that cannot be used."""


def _signed_bytes(document: dict[str, Any]) -> bytes:
    """What is signed: the checkpoint without its signature, keys sorted (the same bytes on every reader)."""
    import orjson

    return orjson.dumps({k: v for k, v in document.items() if k != "signature"}, option=orjson.OPT_SORT_KEYS)


def _import_key(pem: bytes, private: bool) -> Any:
    from Crypto.PublicKey import ECC

    try:
        key = ECC.import_key(pem)
    except (ValueError, IndexError, TypeError):
        raise SigningKeyError("不是 Ed25519 密钥文件 (PEM); 用 casecore audit keygen --signing-key 生成") from None
    if key.curve != "Ed25519" or key.has_private() != private:
        raise SigningKeyError("须为 Ed25519 " + ("私钥" if private else "公钥") + " (casecore audit keygen 生成)")
    return key


def key_fingerprint(public_key: Any) -> str:
    return hashlib.sha256(public_key.export_key(format="raw")).hexdigest()[:16]


def new_signing_key() -> tuple[bytes, bytes]:
    """A new Ed25519 key pair for the auditor: (private PEM, public PEM)."""
    from Crypto.PublicKey import ECC

    key = ECC.generate(curve="Ed25519")
    return key.export_key(format="PEM").encode(), key.public_key().export_key(format="PEM").encode()


def sign_checkpoint(document: dict[str, Any], private_pem: bytes) -> dict[str, Any]:
    """The checkpoint with the auditor's signature: which history existed when it was taken."""
    import base64

    from Crypto.Signature import eddsa

    key = _import_key(private_pem, private=True)
    value = eddsa.new(key, "rfc8032").sign(_signed_bytes(document))
    return document | {"signature": {"alg": SIGNATURE_ALG, "key": key_fingerprint(key.public_key()),
                                     "value": base64.b64encode(value).decode()}}


def signature_problem(document: dict[str, Any], public_pem: bytes) -> str | None:
    """None when the checkpoint carries a valid signature by the key; else why not (one sentence)."""
    import base64
    import binascii

    from Crypto.Signature import eddsa

    key = _import_key(public_pem, private=False)
    signature = document.get("signature")
    if not isinstance(signature, dict) or signature.get("alg") != SIGNATURE_ALG:
        return "检查点没有 Ed25519 签名"
    if signature.get("key") != key_fingerprint(key):
        return f"检查点由另一把密钥签名 ({signature.get('key')}), 不是所给公钥 ({key_fingerprint(key)})"
    try:
        eddsa.new(key, "rfc8032").verify(_signed_bytes(document), base64.b64decode(str(signature.get("value"))))
    except (ValueError, binascii.Error):
        return "签名与检查点内容不符: 检查点文件在签名后被改动"
    return None
