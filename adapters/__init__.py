"""The edges: storage selection, CLI, HTTP, feeds, importers, exporters."""
