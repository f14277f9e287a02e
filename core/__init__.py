"""Shared infrastructure: settings, the SQL store, errors and column names.

core imports none of the feature packages (mining, retrieval, agent, api); they all may use it.
"""
