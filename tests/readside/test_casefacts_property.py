"""Property: any stored history (events triggered without guards) folds into the same case facts whatever
the batch size, and a rebuild equals a catch-up."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.readside.readmodels import read_models
from adapters.store.storage import bootstrap
from projections.casefacts import CaseFactsProjection
from tests.readside.test_casefacts_projection import snapshot


@settings(max_examples=15, deadline=None)
@given(data=st.data(), cut=st.integers(min_value=1, max_value=7))
def test_any_stored_history_folds_the_same_in_any_batch_size(data, cut):
    from tests.histories import Histories

    with tempfile.TemporaryDirectory() as tmp:
        app = bootstrap(str(Path(tmp) / "events.db"))
        try:
            hist = Histories(app)
            for _ in range(data.draw(st.integers(5, 40))):
                hist.step(data)
            hist.save()
            with read_models(app, [CaseFactsProjection()], batch_size=cut) as rm:
                rm.catch_up()
                small = snapshot(rm)
            with read_models(app, [CaseFactsProjection()], batch_size=5000) as rm:
                rm.runner.rebuild(rm.projection("casefacts"))
                assert snapshot(rm) == small
        finally:
            app.close()
