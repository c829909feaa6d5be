"""The forgeries a database administrator can commit, each named by `audit verify` (which finishes and exits
non-zero), on SQLite and PostgreSQL: an event appended with a recomputed plain hash, an event and its hash
rewritten, a whole stream's chain recomputed, casecore run with another chain key, a recorded time
back-dated into a checkpointed day, a checkpoint file edited after it was signed."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import orjson
import pytest
from freezegun import freeze_time
from typer.testing import CliRunner

from adapters.cli import app as cli
from adapters.store.audit import audit
from adapters.store.hashchain import ChainKeys, event_hash, keyed_hash
from adapters.store.storage import bootstrap
from tests.builders import cmd, register, run
from tests.store.test_audit import Store, history


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def verify(db_url: str, *args: str) -> tuple[int, dict]:
    result = invoke("audit", "verify", "--db", db_url, "--json", *args)
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, orjson.loads(result.stdout)


def kinds(report: dict) -> set[tuple[str, str | None, int | None]]:
    return {(f["kind"], f.get("stream"), f.get("version")) for f in report["findings"]}


def keygen(path: Path, *args: str) -> Path:
    result = invoke("audit", "keygen", "--chain-keys", str(path), *args)
    assert result.exit_code == 0, result.output
    return path


@pytest.fixture
def keys(tmp_path) -> Path:
    return keygen(tmp_path / "chain-keys.json", "--id", "k1", "--from", "2020-01-01")


@pytest.fixture
def keyed(db_url, keys):
    """A store whose chain is keyed: H1 (10 events) and H2 (2 events) written with key k1."""
    app = bootstrap(db_url, chain_key_file=str(keys))
    try:
        history(app)
        yield app
    finally:
        app.close()


def lead(hid: str, lead_id: str, on: date = date(2023, 3, 6)):
    return cmd("record_lead", on, household_id=hid, lead_id=lead_id, source="self_declaration",
               risk_types=["illness"], detail="申报")


class Forger(Store):
    """The administrator: writes event rows and hash rows as the engine would, with whatever hash it can make."""

    def head(self, stream: str) -> tuple[int, str, str]:
        with self.sql() as q:
            return tuple(q(f"SELECT originator_version, hash, recorded_at FROM {self.hashes} WHERE originator_id = ? "
                           "ORDER BY originator_version DESC LIMIT 1", (stream,))[0])

    def append(self, stream: str, recorded_at: str | None = None, hasher=event_hash) -> int:
        """A new last event of `stream` (a copy of its last one, slightly changed) with a hash row."""
        version, prev, last_recorded = self.head(stream)
        _, topic, state = self.row(stream, version)
        forged = state.replace(b"\xe7\x94\xb3\xe6\x8a\xa5", b"\xe4\xbc\xaa\xe9\x80\xa0")   # 申报 → 伪造
        self.insert(stream, version + 1, topic, forged)
        position, _, _ = self.row(stream, version + 1)
        at = recorded_at or last_recorded
        h = hasher(prev, stream, version + 1, position, at, topic, forged)
        with self.sql() as q:
            q(f"INSERT INTO {self.hashes} VALUES (?,?,?,?,?,?)", (stream, version + 1, position, at, prev, h))
        return version + 1

    def rewrite(self, stream: str, version: int, hasher=event_hash) -> None:
        """Change an event's content and compute its hash again (and the rest of the stream's chain)."""
        _, _, state = self.row(stream, version)
        self.set_state(stream, version, state + b" ")
        with self.sql() as q:
            rows = q(f"SELECT e.originator_version, e.{self.pos}, e.topic, e.state, h.recorded_at, h.prev_hash "
                     f"FROM {self.events} e JOIN {self.hashes} h ON e.originator_id = h.originator_id "
                     "AND e.originator_version = h.originator_version WHERE e.originator_id = ? "
                     "ORDER BY e.originator_version", (stream,))
            prev = None
            for v, pos, topic, body, recorded_at, stored_prev in rows:
                if v < version:
                    continue
                prev = stored_prev if prev is None else prev
                h = hasher(prev, stream, v, pos, recorded_at, topic, bytes(body))
                q(f"UPDATE {self.hashes} SET prev_hash = ?, hash = ? WHERE originator_id = ? "
                  "AND originator_version = ?", (prev, h, stream, v))
                prev = h


def test_an_untouched_keyed_store_verifies_with_its_keys_and_not_without_them(keyed, db_url, keys):
    code, report = verify(db_url, "--chain-key-file", str(keys))
    assert (code, report["ok"], report["events"], report["chain"]) == (0, True, 12, {"keys": ["k1"]})
    code, report = verify(db_url)
    assert code == 1 and [f["kind"] for f in report["findings"]] == ["key_unknown"]
    assert "k1" in report["findings"][0]["detail"] and "12" in report["findings"][0]["detail"]


def test_a_forged_event_appended_with_a_recomputed_plain_hash_is_named(keyed, db_url, keys):
    version = Forger(keyed).append("household/H2")
    code, report = verify(db_url, "--chain-key-file", str(keys))
    assert code == 1 and kinds(report) == {("unkeyed", "household/H2", version)}


def test_an_event_rewritten_with_its_hash_is_named_even_as_its_streams_last_event(keyed, db_url, keys):
    Forger(keyed).rewrite("household/H2", 2)
    code, report = verify(db_url, "--chain-key-file", str(keys))
    assert code == 1 and kinds(report) == {("unkeyed", "household/H2", 2)}


def test_a_whole_streams_chain_recomputed_without_the_key_is_named_event_by_event(keyed, db_url, keys):
    Forger(keyed).rewrite("household/H1", 1)
    code, report = verify(db_url, "--chain-key-file", str(keys))
    # recorded since the keys' `from` date, yet plain: every one is named, though no keyed row is above them
    assert code == 1 and kinds(report) == {("unkeyed", "household/H1", v) for v in range(1, 11)}
    assert len(audit(keyed.recorder, keys=ChainKeys.from_file(keys)).findings) == 10


def test_a_hash_computed_with_a_guessed_key_under_the_real_key_id_is_named_as_altered(keyed, db_url, keys, tmp_path):
    guessed = ChainKeys.from_file(keygen(tmp_path / "guess.json", "--id", "k1", "--from", "2020-01-01")).keys[0]
    Forger(keyed).rewrite("household/H2", 2, hasher=lambda *parts: keyed_hash(guessed, *parts))
    code, report = verify(db_url, "--chain-key-file", str(keys))
    assert code == 1 and kinds(report) == {("altered", "household/H2", 2)}


@pytest.mark.parametrize("other", ["another key id", "the same key id", "no key"])
def test_casecore_run_with_another_chain_key_cannot_append_unnoticed(keyed, db_url, keys, tmp_path, other):
    if other == "no key":
        writer = bootstrap(db_url)
    else:
        other_keys = keygen(tmp_path / "other.json", "--id", "k2" if other == "another key id" else "k1",
                            "--from", "2020-01-01")
        writer = bootstrap(db_url, chain_key_file=str(other_keys))
    try:
        assert writer.handle(lead("H2", "L9")).ok
    finally:
        writer.close()
    code, report = verify(db_url, "--chain-key-file", str(keys))
    assert code == 1
    expected = {"another key id": {("key_unknown", None, None)}, "the same key id": {("altered", "household/H2", 3)},
                "no key": {("unkeyed", "household/H2", 3)}}[other]
    assert kinds(report) == expected


def test_a_recorded_time_back_dated_into_a_checkpointed_day_is_named(app, db_url, tmp_path):
    """On a plain store (no chain key) the forged event's hash is right: the checkpoint catches it."""
    with freeze_time("2026-03-01 09:00:00"):
        history(app)
    with freeze_time("2026-03-02 09:00:00"):
        run(app, [lead("H2", "L3")])
    cp = tmp_path / "cp.json"
    assert invoke("audit", "checkpoint", "--db", db_url, "--out", str(cp)).exit_code == 0
    with freeze_time("2026-03-05 09:00:00"):
        run(app, [lead("H2", "L5")])   # a real event after the checkpoint
    assert verify(db_url, "--from-checkpoint", str(cp))[0] == 0
    # H1 was last recorded on 03-01 09:00: the forgery keeps its stream in order, and claims 03-01 12:00
    version = Forger(app).append("household/H1", recorded_at="2026-03-01T12:00:00.000000+00:00")
    assert verify(db_url)[0] == 0   # without the checkpoint, a plain chain cannot tell
    code, report = verify(db_url, "--from-checkpoint", str(cp))
    assert code == 1 and kinds(report) == {("backdated", "household/H1", version)}


def test_a_signed_checkpoint_proves_which_history_existed_and_cannot_be_edited(app, db_url, tmp_path):
    auditor = tmp_path / "auditor.key"
    assert invoke("audit", "keygen", "--signing-key", str(auditor)).exit_code == 0
    public = tmp_path / "auditor.key.pub"
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    with freeze_time("2026-03-01 09:00:00"):
        history(app)
    result = invoke("audit", "checkpoint", "--db", db_url, "--signing-key", str(auditor),
                    "--out", str(folder / "2026-03-01.json"))
    assert result.exit_code == 0, result.output
    with freeze_time("2026-03-02 09:00:00"):
        run(app, [lead("H2", "L3")])
    assert invoke("audit", "checkpoint", "--db", db_url, "--signing-key", str(auditor),
                  "--out", str(folder / "2026-03-02.json")).exit_code == 0
    code, report = verify(db_url, "--checkpoints", str(folder), "--public-key", str(public))
    assert (code, report["checkpoints"]) == (0, {"files": 2, "signed": 2})

    forger = Forger(app)
    forger.rewrite("household/H1", 1)   # the whole stream's chain recomputed: invisible without a checkpoint
    assert verify(db_url)[0] == 0
    code, report = verify(db_url, "--checkpoints", str(folder), "--public-key", str(public))
    assert code == 1
    assert {f["kind"] for f in report["findings"]} == {"day_changed"}
    assert {f["detail"].split(":")[0] for f in report["findings"]} == {
        "已签名检查点 2026-03-01.json", "已签名检查点 2026-03-02.json"}

    edited = orjson.loads((folder / "2026-03-01.json").read_bytes())
    edited["days"][0]["digest"] = "0" * 64   # the administrator edits the auditor's file to match
    (folder / "2026-03-01.json").write_bytes(orjson.dumps(edited))
    code, report = verify(db_url, "--checkpoints", str(folder), "--public-key", str(public))
    forged = [f for f in report["findings"] if f["kind"] == "checkpoint_forged"]
    assert code == 1 and len(forged) == 1 and "2026-03-01.json" in forged[0]["detail"]

    other = tmp_path / "other.key"
    assert invoke("audit", "keygen", "--signing-key", str(other)).exit_code == 0
    code, report = verify(db_url, "--checkpoints", str(folder), "--public-key", str(tmp_path / "other.key.pub"))
    assert code == 1 and sum(f["kind"] == "checkpoint_forged" for f in report["findings"]) == 2


def test_chain_keys_rotate_by_date_and_old_keys_stay_for_verification(db_url, tmp_path):
    keys = keygen(tmp_path / "keys.json", "--id", "k2026a", "--from", "2026-01-01")
    old_file = tmp_path / "old-keys.json"
    old_file.write_bytes(keys.read_bytes())
    keygen(keys, "--id", "k2026b", "--from", "2026-02-01")
    app = bootstrap(db_url, chain_key_file=str(keys))
    try:
        with freeze_time("2026-01-10 09:00:00"):
            run(app, [register("H1", on=date(2023, 3, 1))])
        with freeze_time("2026-02-05 09:00:00"):
            run(app, [lead("H1", "L1"), register("H2", on=date(2023, 3, 1))])
        hashes = [r.hashed.hash.split(":")[1] for r in app.recorder.iter_audit_rows()]
        assert sorted(hashes) == ["k2026a", "k2026b", "k2026b"]
        assert verify(db_url, "--chain-key-file", str(keys))[0] == 0
        code, report = verify(db_url, "--chain-key-file", str(old_file))
        assert code == 1 and kinds(report) == {("key_unknown", None, None)}
    finally:
        app.close()
    # a writer still holding only the retired key, after the newer one came into use
    stale = bootstrap(db_url, chain_key_file=str(old_file))
    try:
        with freeze_time("2026-02-06 09:00:00"):
            run(stale, [lead("H2", "L2")])
    finally:
        stale.close()
    code, report = verify(db_url, "--chain-key-file", str(keys))
    assert code == 1 and kinds(report) == {("stale_key", "household/H2", 2)}


def test_a_plain_history_keyed_from_a_day_on_still_verifies(db_url, tmp_path):
    keys = keygen(tmp_path / "keys.json", "--id", "k1", "--from", "2026-03-02")
    plain = bootstrap(db_url)
    try:
        with freeze_time("2026-03-01 09:00:00"):
            history(plain)
    finally:
        plain.close()
    app = bootstrap(db_url, chain_key_file=str(keys))
    try:
        with freeze_time("2026-03-03 09:00:00"):
            run(app, [lead("H2", "L3"), lead("H1", "L4")])
    finally:
        app.close()
    code, report = verify(db_url, "--chain-key-file", str(keys))
    assert (code, report["events"]) == (0, 14)


def test_the_environment_key_keys_the_chain(db_url, monkeypatch):
    from adapters.store.hashchain import new_secret

    monkeypatch.setenv("CASECORE_CHAIN_KEY", new_secret())
    app = bootstrap(db_url)
    try:
        history(app)
        assert all(r.hashed.hash.startswith("hmac-sha256:k") for r in app.recorder.iter_audit_rows())
    finally:
        app.close()
    assert verify(db_url)[0] == 0
    monkeypatch.delenv("CASECORE_CHAIN_KEY")
    assert verify(db_url)[0] == 1


@pytest.mark.parametrize("bad_id", ["key one", "k:1", "k" * 41, "k2\n"])
def test_keygen_refuses_a_key_id_the_keys_file_cannot_hold_and_leaves_the_file_usable(tmp_path, bad_id):
    keys = keygen(tmp_path / "keys.json", "--id", "k1", "--from", "2020-01-01")
    before = keys.read_bytes()
    result = invoke("audit", "keygen", "--chain-keys", str(keys), "--id", bad_id)
    assert result.exit_code == 2
    assert keys.read_bytes() == before and [k.id for k in ChainKeys.from_file(keys).keys] == ["k1"]
    fresh = tmp_path / "fresh.json"
    assert invoke("audit", "keygen", "--chain-keys", str(fresh), "--id", bad_id).exit_code == 2
    assert not fresh.exists()
