"""The legal steps of each procedure, as `transitions` state-machine tables (pure: no I/O)."""
