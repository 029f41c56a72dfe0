"""Shared fixtures: an isolated data folder, synthetic reels made by ffmpeg, Prefect's test harness."""

from __future__ import annotations

import logging
import os
from fractions import Fraction
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("AUDIOX_SHARED", ROOT.parent / "shared"))
MEDIA = SHARED / "media"
AUDIOX_FACTS = SHARED / "audiox"

needs_media = pytest.mark.skipif(not (MEDIA / "MANIFEST.json").is_file(), reason=f"shared media not found at {MEDIA}")
needs_audiox_facts = pytest.mark.skipif(not (AUDIOX_FACTS / "keys_base.json").is_file(), reason=f"AudioX facts not found at {AUDIOX_FACTS}")


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
    from audiox_core.media.synthetic import make_reel

    return make_reel(tmp_path_factory.mktemp("reel") / "short_reel.mp4", shot_frames=(20, 15, 20), fps=Fraction(25), size=(320, 180))


@pytest.fixture(scope="session")
def tiny_model():
    from audiox_core.model.checkpoint import load_model

    return load_model("tiny", device="cpu")


@pytest.fixture(scope="session")
def prefect_api():
    """Prefect's own test harness: a temporary server and database for the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield


@pytest.fixture(autouse=True)
def no_error_logs_from_our_code(caplog: pytest.LogCaptureFixture):
    """Our own modules must not log errors silently; expected failures raise instead."""
    yield
    ours = ("audiox_core", "tasks", "flows", "db")
    errors = [r for r in caplog.get_records("call") if r.levelno >= logging.ERROR and r.name.startswith(ours)]
    assert not errors, [r.getMessage() for r in errors]
