"""Prefect flows (orchestration only) and the ``audiox-studio`` command line."""
