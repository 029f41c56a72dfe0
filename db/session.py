"""Engines and sessions for the provenance database; schema changes only through Alembic.

SQLite by default (a file in the data folder), PostgreSQL in production via ``AUDIOX_DB_URL``
(e.g. ``postgresql+psycopg://user@host/db``).
"""

from __future__ import annotations

import fcntl
import os
import re
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
    """The URL without its password, for logs and messages; a URL SQLAlchemy cannot parse loses
    everything between ``://`` and the last ``@`` (where a password would be)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return re.sub(r"://[^?#]*@", "://***@", url)


def connection_problem(url: str) -> str | None:
    """Why the database at ``url`` cannot be used, as one line naming it (password hidden), or None
    when a connection opens: a malformed URL, a missing driver, a server that is down or refuses
    the credentials. Checked before a run starts its expensive stages."""
    from sqlalchemy import text
    from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

    shown = f"database {redact(url)}"
    try:
        engine = make_engine(url, connect_timeout_s=10)
    except (ArgumentError, ValueError) as e:
        return f"{shown}: malformed URL ({str(e).splitlines()[0]}); expected e.g. postgresql+psycopg://host:5432/studio"
    except (NoSuchModuleError, ImportError) as e:
        return f"{shown}: unsupported database ({str(e).splitlines()[0]})"
    except OSError as e:  # SQLite: the file's folder cannot be made
        return f"{shown}: cannot create its folder ({e.strerror})"
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except DBAPIError as e:
        reason = (str(e.orig).strip().splitlines() or [type(e.orig).__name__])[0]
        return f"{shown}: cannot connect ({reason})"
    finally:
        engine.dispose()
    return None


def make_engine(url: str, connect_timeout_s: int = 30) -> Engine:
    """An engine for ``url``: SQLite with foreign keys on (its folder created), else pooled with
    pre-ping; ``connect_timeout_s`` bounds waiting for a lock (SQLite) or the server (PostgreSQL)."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": connect_timeout_s})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(conn, _record) -> None:  # foreign keys are off by default in SQLite
            conn.execute("PRAGMA foreign_keys=ON")

        return engine
    connect_args = {"connect_timeout": connect_timeout_s} if url.startswith("postgresql") else {}
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


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
