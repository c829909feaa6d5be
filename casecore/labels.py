"""The labels of event types and payload fields, kept importable here: their home is `casecore.vocabulary`."""

from casecore.vocabulary import (
    EVENT_LABELS,
    FIELD_LABELS,
    MEASURE_STATUS,
    event_label,
    payload_items,
    value_text,
)

__all__ = ["EVENT_LABELS", "FIELD_LABELS", "MEASURE_STATUS", "event_label", "payload_items", "value_text"]
