"""Batch work over the store: mining runs (and, later, batch recommendations)."""
