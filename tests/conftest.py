"""Shared fixtures: an isolated data folder, synthetic reels made by ffmpeg, Prefect's test harness,
started processes that are always stopped; and pytest-timeout's limit scaled with the load."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import pytest
from harness import Processes, scaled_timeout, wait_until_serving

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# The suite runs on the random-weight test model unless a test names another (the default run
# model is the shipped demo model; tests/test_demo_model.py checks that default itself).
os.environ.setdefault("AUDIOX_MODEL", "tiny")

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("AUDIOX_SHARED", ROOT.parent / "shared"))
MEDIA = SHARED / "media"
AUDIOX_FACTS = SHARED / "audiox"

needs_media = pytest.mark.skipif(not (MEDIA / "MANIFEST.json").is_file(), reason=f"shared media not found at {MEDIA}")
needs_audiox_facts = pytest.mark.skipif(
    not (AUDIOX_FACTS / "keys_base.json").is_file(), reason=f"AudioX facts not found at {AUDIOX_FACTS}"
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests marked ``long(seconds)`` first, longest first: with two workers taking tests one by one
    (``--maxschedchunk 1``), each starts on its share of the long ones while the short ones fill in after."""

    def weight(item: pytest.Item) -> float:
        mark = item.get_closest_marker("long")
        return -float(mark.args[0]) if mark else 0.0

    items.sort(key=weight)  # stable: the order within the long and the short tests is kept


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    """pytest-timeout's limit (pyproject's ``timeout``, ``--timeout``) scaled like every other wait
    in the suite, for a test without a ``timeout`` marker of its own."""
    if item.config.pluginmanager.hasplugin("timeout") and item.get_closest_marker("timeout") is None:
        from pytest_timeout import get_env_settings

        if limit := get_env_settings(item.config).timeout:
            item.add_marker(pytest.mark.timeout(scaled_timeout(limit)))
    return (yield)


@pytest.fixture
def processes() -> Iterator[Processes]:
    """Start a test's processes with ``processes.start(args, **popen_kwargs)``: each is stopped when
    the test ends, however it ends (fixtures of wider scope use ``with Processes()`` themselves)."""
    with Processes() as started:
        yield started


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh AUDIOX_HOME (SQLite database and work files) for one test."""
    path = tmp_path / "home"
    monkeypatch.setenv("AUDIOX_HOME", str(path))
    monkeypatch.delenv("AUDIOX_DB_URL", raising=False)
    return path


@pytest.fixture(scope="session")
def reel(tmp_path_factory: pytest.TempPathFactory):
    """A short synthetic reel with a dialogue-like track: 3 shots (20, 15, 20 frames) at 25 fps."""
    from audiox_core.video.lavfi_reel import make_reel

    return make_reel(
        tmp_path_factory.mktemp("reel") / "short_reel.mp4", shot_frames=(20, 15, 20), fps=Fraction(25), size=(320, 180)
    )


@pytest.fixture(scope="module")
def training_setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny training recipe and a data folder of two paired examples: (recipe path, data folder)."""
    from tests.test_train import _clip, tiny_architecture, write_recipe

    folder = tmp_path_factory.mktemp("training")
    data = folder / "data"
    data.mkdir()
    for k in range(2):
        _clip(data, f"c{k:03d}", 2.5, k)
    write_recipe(folder, tiny_architecture())
    return folder / "recipe.json", data


@pytest.fixture(scope="session")
def tiny_model():
    from audiox_core.model.runtime import load_model

    return load_model("tiny", device="cpu")


@pytest.fixture(scope="session")
def prefect_api():
    """Prefect's own test harness: a temporary server and database for the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=round(scaled_timeout(60))):
        yield


@pytest.fixture(autouse=True)
def no_error_logs_from_our_code(caplog: pytest.LogCaptureFixture):
    """Our own modules must not log errors silently; expected failures raise instead."""
    yield
    ours = ("audiox_core", "tasks", "flows", "db")
    errors = [r for r in caplog.get_records("call") if r.levelno >= logging.ERROR and r.name.startswith(ours)]
    assert not errors, [r.getMessage() for r in errors]


def _pg_binary(name: str) -> str | None:
    import glob
    import shutil

    return shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)


class PostgresCluster:
    """A throwaway PostgreSQL cluster on a free 127.0.0.1 port (initdb + pg_ctl, as the ``postgres`` user
    when running as root), in a folder outside pytest's 0700 tmp folders so the cluster's owner can
    reach it; ``start``/``stop`` it (a test can take its database away), ``remove`` it at the end."""

    def __init__(self) -> None:
        import pwd
        import socket
        import subprocess
        import tempfile

        initdb, self.pg_ctl = _pg_binary("initdb"), _pg_binary("pg_ctl")
        if not initdb or not self.pg_ctl:
            pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found")
        self.base = Path(tempfile.mkdtemp(prefix="audiox-pg-"))
        self.as_user: list[str] = []
        if os.geteuid() == 0:  # the server refuses to run as root
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                pytest.skip("running as root and there is no 'postgres' user to own the test cluster")
            os.chown(self.base, owner.pw_uid, owner.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.data = self.base / "data"
        subprocess.run(
            [*self.as_user, initdb, "-D", str(self.data), "-U", "audiox", "--auth=trust", "-E", "UTF8"],
            check=True,
            capture_output=True,
        )
        self.server = f"postgresql+psycopg://audiox@127.0.0.1:{self.port}"

    def _ctl(self, *args: str, check: bool = True) -> None:
        import subprocess

        wait_s = str(round(scaled_timeout(60)))  # pg_ctl's own default wait, scaled
        subprocess.run(
            [*self.as_user, self.pg_ctl, "-D", str(self.data), "-w", "-t", wait_s, *args],
            check=check,
            capture_output=True,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._ctl("-o", options, "-l", str(self.base / "log"), "start")

    def stop(self, mode: str = "fast", check: bool = True) -> None:
        self._ctl("-m", mode, "stop", check=check)

    def createdb(self, name: str) -> str:
        """A new database's URL."""
        import subprocess

        createdb = _pg_binary("createdb") or "createdb"
        subprocess.run(
            [*self.as_user, createdb, "-h", "127.0.0.1", "-p", str(self.port), "-U", "audiox", name],
            check=True,
            capture_output=True,
        )
        return f"{self.server}/{name}"

    def remove(self) -> None:
        """Stop the server (whatever state a failed start left it in) and remove the cluster."""
        import shutil

        from db import session

        with session._lock:  # close every pooled connection this process opened before the server stops
            for factory in session._factories.values():
                factory.kw["bind"].dispose()
            session._factories.clear()
        self.stop("immediate", check=False)
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database on a throwaway PostgreSQL cluster shared by the session, stopped at the end."""
    cluster = PostgresCluster()
    try:  # a start that times out may leave the server starting: stopped by remove too
        cluster.start()
        yield cluster.createdb("studio")
    finally:
        cluster.remove()


@pytest.fixture
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A PostgreSQL cluster of one test's own (started), to stop and start again."""
    cluster = PostgresCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same tests on SQLite and on a real PostgreSQL (a fresh database per test)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'studio.db'}"
    import uuid

    from sqlalchemy import create_engine, text

    server = request.getfixturevalue("postgres_url")
    name = f"t{uuid.uuid4().hex[:12]}"
    engine = create_engine(server, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return server.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="session")
def s3_endpoint():
    """moto_server as an S3/SQS endpoint on a free 127.0.0.1 port, with dummy credentials."""
    import shutil
    import socket
    import subprocess
    import sys

    server = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
    if not Path(server).exists():
        pytest.skip("moto_server not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    env = {
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    previous = {k: os.environ.get(k) for k in env}
    from audiox_core.store.s3 import s3_client

    with Processes() as started:
        proc = started.start(
            [server, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_until_serving(url, proc, scaled_timeout(30), "moto_server")
        os.environ.update(env)
        s3_client.cache_clear()
        try:
            yield url
        finally:
            for k, v in previous.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            s3_client.cache_clear()
