"""Engines and sessions for the provenance database; schema changes only through Alembic.

SQLite by default (a file in the data folder), PostgreSQL in production via ``AUDIOX_DB_URL``
(e.g. ``postgresql+psycopg://user@host/db``).
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"


def database_url(home: Path) -> str:
    """``$AUDIOX_DB_URL``, else ``sqlite:///<home>/studio.db``."""
    return os.environ.get("AUDIOX_DB_URL") or f"sqlite:///{home / 'studio.db'}"


def redact(url: str) -> str:
    """The URL without its password, for logs and messages."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(conn, _record) -> None:  # foreign keys are off by default in SQLite
            conn.execute("PRAGMA foreign_keys=ON")

        return engine
    return create_engine(url, pool_pre_ping=True)


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations up to ``revision``. For SQLite, under a lock file beside the database, so
    worker processes starting at once do not migrate a fresh file twice."""
    if not url.startswith("sqlite:///"):
        command.upgrade(alembic_config(url), revision)  # PostgreSQL: transactional DDL
        return
    lock_path = Path(url.removeprefix("sqlite:///") + ".migrate.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            command.upgrade(alembic_config(url), revision)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


_factories: dict[str, sessionmaker[Session]] = {}
_lock = threading.Lock()


def sessions(url: str) -> sessionmaker[Session]:
    """A session factory for ``url``, migrating the schema to head on first use in this process
    (under a lock: Alembic's migration context is process-global)."""
    with _lock:
        if url not in _factories:
            upgrade(url)
            _factories[url] = sessionmaker(make_engine(url), expire_on_commit=False)
        return _factories[url]
