"""Mappings: pure functions from a parsed message to canonical records, one module per family."""
