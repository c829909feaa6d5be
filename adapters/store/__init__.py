"""Where the events live and how they stay honest: choosing the store, the hash chain, the audit, snapshot
housekeeping, store failures in words."""
