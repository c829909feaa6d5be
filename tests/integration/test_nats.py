"""Forwarding the feed to the real NATS JetStream server: a publisher killed mid-stream and restarted
neither loses nor duplicates a message."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import nats
import pytest

from adapters.integration.feed import event_id, read_events
from adapters.integration.nats_publisher import PositionStore, publish_nats
from adapters.readside.readmodels import store_of
from tests.builders import register
from tests.services import NATS_URL, nats_reason, require

pytestmark = pytest.mark.nats


@pytest.fixture
def stream() -> Iterator[tuple[str, str]]:
    """A JetStream stream and subject prefix of the test's own, deleted afterwards."""
    require(nats_reason())
    tag = uuid.uuid4().hex[:10]
    name, prefix = f"CASECORE_T_{tag}", f"t{tag}"
    yield name, prefix

    async def drop() -> None:
        nc = await nats.connect(NATS_URL)
        try:
            await nc.jetstream().delete_stream(name)
        except nats.js.errors.NotFoundError:
            pass
        await nc.drain()

    asyncio.run(drop())


async def _stored(name: str, prefix: str) -> list[tuple[str, int, str]]:
    """Every message in the stream, in stream order: (Nats-Msg-Id, position, subject)."""
    nc = await nats.connect(NATS_URL)
    try:
        js = nc.jetstream()
        total = (await js.stream_info(name)).state.messages
        sub = await js.pull_subscribe(f"{prefix}.>", stream=name)
        out: list[tuple[str, int, str]] = []
        while len(out) < total:
            for msg in await sub.fetch(batch=500, timeout=5):
                out.append((msg.headers["Nats-Msg-Id"], int(msg.headers["Casecore-Position"]), msg.subject))
                await msg.ack()
        return out
    finally:
        await nc.drain()


async def _count(name: str) -> int:
    nc = await nats.connect(NATS_URL)
    try:
        try:
            return (await nc.jetstream().stream_info(name)).state.messages
        except nats.js.errors.NotFoundError:
            return 0
    finally:
        await nc.drain()


def _expected(app) -> list[tuple[str, int]]:
    return [(event_id(e.originator_id, e.originator_version), pos) for pos, e in read_events(app, 0, 1_000_000)]


def _publisher(db: str, name: str, prefix: str, *extra: str) -> subprocess.Popen:
    casecore = os.path.join(os.path.dirname(sys.executable), "casecore")
    return subprocess.Popen([casecore, "publish", "nats", "--url", NATS_URL, "--stream", name,
                             "--subject-prefix", prefix, "--db", db, *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=os.environ | {"CASECORE_LOG_LEVEL": "error"})


def test_a_publisher_killed_mid_stream_and_restarted_publishes_every_event_exactly_once(
        sqlite_app, sqlite_url, stream):
    name, prefix = stream
    list(sqlite_app.handle_many([register(f"H{i}") for i in range(2000)]))
    expected = _expected(sqlite_app)
    assert len(expected) == 2000

    proc = _publisher(sqlite_url, name, prefix, "--batch", "5")
    try:
        deadline = time.monotonic() + 60
        while asyncio.run(_count(name)) < 100:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the publisher did not start publishing"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        proc.kill()
    at_kill = asyncio.run(_count(name))
    assert 100 <= at_kill < len(expected), "the kill was not mid-stream"
    positions = PositionStore(store_of(sqlite_app).sqlalchemy_url, f"nats:{name}:{prefix}")
    try:
        assert positions.get() <= expected[at_kill - 1][1]  # never ahead of what JetStream acknowledged
    finally:
        positions.close()

    again = _publisher(sqlite_url, name, prefix, "--once")
    _, err = again.communicate(timeout=120)
    assert again.returncode == 0, err

    stored = asyncio.run(_stored(name, prefix))
    assert len(stored) == len(expected)
    assert [(msg_id, pos) for msg_id, pos, _ in stored] == expected  # each once, in position order
    assert stored[0][2] == f"{prefix}.household.registered.v1"

    list(sqlite_app.handle_many([register(f"N{i}") for i in range(5)]))
    last = _publisher(sqlite_url, name, prefix, "--once")
    assert last.wait(timeout=60) == 0
    assert asyncio.run(_count(name)) == len(expected) + 5


def test_two_publishers_at_once_leave_one_copy_of_each_event(sqlite_app, sqlite_url, stream):
    name, prefix = stream
    list(sqlite_app.handle_many([register(f"H{i}") for i in range(400)]))
    stores = [PositionStore(store_of(sqlite_app).sqlalchemy_url, f"nats:{name}:{prefix}") for _ in range(2)]

    async def both():
        return await asyncio.gather(*(publish_nats(sqlite_app, s, NATS_URL, name, prefix=prefix, once=True,
                                                   batch=50) for s in stores))

    try:
        first, second = asyncio.run(both())
    finally:
        for s in stores:
            s.close()
    assert first.published + second.published == 400
    assert first.duplicates + second.duplicates > 0  # JetStream recognised the second copies by Nats-Msg-Id
    stored = asyncio.run(_stored(name, prefix))
    assert [(m, p) for m, p, _ in stored] == _expected(sqlite_app)


def test_a_lost_position_is_recovered_from_the_stream_without_publishing_again(app, stream):
    name, prefix = stream
    list(app.handle_many([register(f"H{i}") for i in range(30)]))
    positions = PositionStore(store_of(app).sqlalchemy_url, f"nats:{name}:{prefix}")
    try:
        stats = asyncio.run(publish_nats(app, positions, NATS_URL, name, prefix=prefix, once=True))
        assert (stats.published, stats.duplicates) == (30, 0)
        positions.set(0)  # the tracked position is lost (a restored backup, a wiped table)
        again = asyncio.run(publish_nats(app, positions, NATS_URL, name, prefix=prefix, once=True))
        assert (again.published, again.duplicates) == (0, 0)
        assert positions.get() == stats.position
    finally:
        positions.close()
    assert len(asyncio.run(_stored(name, prefix))) == 30


def test_personal_data_is_masked_on_the_wire_unless_the_publisher_is_entitled(sqlite_app, stream):
    name, prefix = stream
    list(sqlite_app.handle_many([register("H1")]))
    member = sqlite_app.get_household("H1").current_members()[0]

    async def first_payload() -> bytes:
        nc = await nats.connect(NATS_URL)
        try:
            sub = await nc.jetstream().pull_subscribe(f"{prefix}.>", stream=name)
            return (await sub.fetch(1, timeout=5))[0].data
        finally:
            await nc.drain()

    positions = PositionStore(store_of(sqlite_app).sqlalchemy_url, f"nats:{name}:{prefix}")
    try:
        asyncio.run(publish_nats(sqlite_app, positions, NATS_URL, name, prefix=prefix, once=True))
    finally:
        positions.close()
    data = asyncio.run(first_payload())
    assert member["person_id"].encode() not in data and member["name"].encode() not in data
