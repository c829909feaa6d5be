"""Published JSON Schemas beyond the commands (events are added by the feed)."""
