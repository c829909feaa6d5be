"""A catch-up of one projection never holds up the reads of another on the same server: the roster folding a
long batch does not stop a household's timeline from being caught up and read."""

from __future__ import annotations

import threading

import pytest

from projections.roster import RosterProjection
from tests.builders import inclusion_path, register
from tests.http.support import auth, client_for, post_as_actors


def test_a_household_timeline_is_read_while_the_roster_is_still_folding(db_url, tmp_path, monkeypatch):
    folding = threading.Event()
    release = threading.Event()
    original = RosterProjection.fold_at

    def slow_fold(self, conn, events, positions):
        folding.set()
        assert release.wait(30), "the test never released the roster's fold"
        return original(self, conn, events, positions)

    with client_for(db_url, tmp_path) as client:
        post_as_actors(client, [register("H1"), *inclusion_path("H1")])
        # the timeline is current; the roster has never been read and has the whole log to fold
        assert client.get("/households/H1/timeline", headers=auth("tok-county-1")).status_code == 200
        monkeypatch.setattr(RosterProjection, "fold_at", slow_fold)
        roster = threading.Thread(target=lambda: client.get("/roster", headers=auth("tok-county-1")))
        roster.start()
        try:
            assert folding.wait(30), "the roster never began to fold"
            answered: list[int] = []
            reader = threading.Thread(target=lambda: answered.append(
                client.get("/households/H1/timeline", headers=auth("tok-county-1")).status_code))
            reader.start()
            reader.join(10)
            assert answered == [200], "the timeline waited for the roster's catch-up"
        finally:
            release.set()
            roster.join(30)


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])
