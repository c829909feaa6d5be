"""The household (户): its events (`events`), its state and queries (`state`), its guards (`guards`) and the
aggregate that decides its commands (`aggregate`). The names the rest of the house imports stand here."""

from casecore.household.aggregate import WORKFLOWS, Household, legal_commands
from casecore.household.guards import GUARDS, SIGN_LEVEL_OF
from casecore.household.state import ASSISTED_STAGES, SETTLED_STAGES, has_labour, is_settled, measure_spans
from casecore.views import household_state as public_state
from casecore.vocabulary import step_label

__all__ = ["ASSISTED_STAGES", "GUARDS", "SETTLED_STAGES", "SIGN_LEVEL_OF", "WORKFLOWS", "Household", "has_labour",
           "is_settled", "legal_commands", "measure_spans", "public_state", "step_label"]
