"""Prefect flows: orchestration only (the soundtrack of one reel, the nightly batch)."""
