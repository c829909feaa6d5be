"""Importers: files from other systems (the national monitoring export, department screening data)."""
