"""Prefect tasks: thin adapters that call audiox_core and db/, passing paths, ids and small values."""
