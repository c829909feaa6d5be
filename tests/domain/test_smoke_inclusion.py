from casecore.values import Stage
from tests.builders import inclusion_path, register, run


def test_a_household_goes_through_the_whole_inclusion_procedure_and_is_monitored(app):
    run(app, [register(), *inclusion_path()])
    h = app.get_household("H1")
    assert h.stage == Stage.MONITORED
    assert h.category == "marginal"
    assert h.included_on.isoformat() == "2023-03-13"
