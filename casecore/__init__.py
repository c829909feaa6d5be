"""casecore: event-sourced case management for 防止返贫动态监测和帮扶."""

__version__ = "0.1.0"
