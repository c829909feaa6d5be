"""Queries over the read models that fold nothing themselves: the inspector's rules, the auditor's replay, the
monthly roster push."""
