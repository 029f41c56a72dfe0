"""Provenance database: SQLAlchemy models, sessions, repository functions and Alembic migrations."""
