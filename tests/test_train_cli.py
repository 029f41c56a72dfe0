"""``audiox-studio train`` as its user runs it: progress lines with loss and steps/s in a log, the
model, metrics and loss curve at the end; bad inputs are one line and exit 1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from harness import scaled_timeout

from tests.test_train import _clip

pytestmark = pytest.mark.integration  # each test trains or runs the train command: the full suite's

ROOT = Path(__file__).resolve().parents[1]


def _train(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", "train", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=scaled_timeout(300),
    )


def test_train_logs_progress_and_writes_the_model(training_setup: tuple[Path, Path], tmp_path: Path) -> None:
    recipe, data = training_setup
    done = _train("--config", str(recipe), "--data", str(data), "--out", str(tmp_path / "run"), "--device", "cpu")
    assert done.returncode == 0, done.stderr
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("train ")]
    assert any(ln.startswith("train vae ") for ln in lines) and any(ln.startswith("train dit ") for ln in lines)
    assert all("loss " in ln and "steps/s" in ln for ln in lines)
    assert (tmp_path / "run" / "model" / "model.safetensors").is_file()
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["stages"]["dit"]["done"] > 0
    again = _train("--config", str(recipe), "--data", str(data), "--out", str(tmp_path / "run"), "--device", "cpu")
    assert again.returncode == 1 and "--resume" in again.stderr and len(again.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("case", ["empty", "bad-caption", "no-audio"])
def test_bad_data_is_one_line(training_setup: tuple[Path, Path], tmp_path: Path, case: str) -> None:
    recipe, good = training_setup
    data = tmp_path / "data"
    data.mkdir()
    if case == "bad-caption":
        _clip(data, "c000", 2.5, 0)
        (data / "c000.json").write_text("{not json")
    elif case == "no-audio":
        _clip(data, "c000", 2.5, 0)
        (data / "c000.wav").unlink()
    done = _train("--config", str(recipe), "--data", str(data), "--out", str(tmp_path / "run"))
    assert done.returncode == 1
    err = done.stderr.strip().splitlines()
    assert err and str(data) in err[-1]
    assert not (tmp_path / "run" / "model").exists()
