"""What `train` refuses before it does any work: a checkpoint that is not our data (a planted pickle
runs nothing), and a recipe with a value no training can use (NaN, ∞, a batch of 0, a wrong type,
an unknown key); each is one line naming the file and the key, and exit 1."""

from __future__ import annotations

import dataclasses
import json
import math
import pickle
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.serialization import get_unsafe_globals_in_checkpoint

from audiox_core.errors import InputError
from audiox_core.train.recipe import RECIPES, DitStage, TrainConfig, VaeStage
from audiox_core.train.state import load_checkpoint, restore_rng_states, rng_states, save_checkpoint
from cli.main import main
from tests.test_train import tiny_architecture, write_recipe


class _Planted:
    """A pickle that writes ``marker`` when it is loaded, and then looks like a checkpoint of another recipe."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        code = (
            f"(__import__('pathlib').Path({str(self.marker)!r}).write_text('ran'), {{'recipe': {{}}, 'data': ''}})[1]"
        )
        return eval, (code,)


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.mark.parametrize("layout", ["torch-archive", "plain-pickle"])
def test_resume_from_a_planted_pickle_runs_nothing(
    training_setup: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], layout: str
) -> None:
    recipe, data = training_setup
    marker, out = tmp_path / "ran", tmp_path / "out"
    ckpt = out / "dit" / "checkpoint.pt"
    ckpt.parent.mkdir(parents=True)
    if layout == "torch-archive":
        torch.save(_Planted(marker), ckpt)
    else:
        ckpt.write_bytes(pickle.dumps(_Planted(marker)))
    args = ["train", "--config", str(recipe), "--data", str(data), "--out", str(out), "--resume", "--device", "cpu"]
    assert main(args) == 1
    assert not marker.exists(), "loading the checkpoint ran its code"
    line = _one_error_line(capsys.readouterr().err)
    assert str(ckpt) in line and "not a training checkpoint" in line, line
    assert not (out / "model").exists()


def test_resume_reads_the_checkpoint_before_the_data(
    training_setup: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A foreign checkpoint is the first thing a resumed run says, before minutes of decoding clips."""
    recipe, _ = training_setup
    out, data = tmp_path / "out", tmp_path / "no-such-data"
    ckpt = out / "vae" / "checkpoint.pt"
    ckpt.parent.mkdir(parents=True)
    torch.save({"encoder.weight": torch.zeros(3, 3)}, ckpt)
    args = ["train", "--config", str(recipe), "--data", str(data), "--out", str(out), "--resume", "--device", "cpu"]
    assert main(args) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert str(ckpt) in line and "not a training checkpoint" in line and str(data) not in line, line


def _previous_layout(path: Path) -> None:
    """A checkpoint as the previous code wrote it: numpy's and python's RNG states pickled as objects."""
    rng = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    torch.save({"stage": "dit", "step": 2, "model": {}, "rng": rng, "losses": [1.0, 0.9]}, path)


@pytest.mark.parametrize("kind", ["bytes", "json", "foreign-tensors", "previous-layout"])
def test_a_foreign_or_old_checkpoint_is_one_line(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "checkpoint.pt"
    if kind == "bytes":
        path.write_bytes(bytes(range(256)) * 4)
    elif kind == "json":
        path.write_text('{"step": 3}')
    elif kind == "foreign-tensors":
        torch.save({"encoder.weight": torch.zeros(3, 3)}, path)
    else:
        _previous_layout(path)
    with pytest.raises(InputError) as e:
        load_checkpoint(path)
    message = str(e.value)
    assert str(path) in message and "not a training checkpoint" in message and "\n" not in message, message
    if kind == "previous-layout":
        assert "earlier version" in message and "new --out" in message, message


def test_a_checkpoint_is_data_and_restores_every_rng(tmp_path: Path) -> None:
    """No object in the file needs more than the weights-only loader, and the RNG streams continue exactly."""
    path = tmp_path / "checkpoint.pt"
    random.seed(5), np.random.seed(5), torch.manual_seed(5)
    np.random.normal()  # numpy caches the second Gaussian of a pair: its state must travel too
    state = _checkpoint_state(rng_states())
    expected = (random.random(), random.gauss(0, 1), np.random.normal(), np.random.rand(3).tolist(), torch.rand(3))
    save_checkpoint(path, state)
    assert get_unsafe_globals_in_checkpoint(str(path)) == []
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    loaded = load_checkpoint(path)
    restore_rng_states(loaded["rng"])
    got = (random.random(), random.gauss(0, 1), np.random.normal(), np.random.rand(3).tolist(), torch.rand(3))
    assert got[:4] == expected[:4] and torch.equal(got[4], expected[4])
    assert loaded["step"] == 2 and loaded["losses"] == [1.0, 0.5] and loaded["recipe"] == state["recipe"]


def _checkpoint_state(rng: dict) -> dict:
    return {
        "stage": "dit", "step": 2, "model": {"w": torch.ones(2)}, "optimizer": {"state": {}, "param_groups": []},
        "schedule": {"last_epoch": 2}, "ema": {"decay": 0.9, "updates": 2, "shadow": {"w": torch.ones(2)}},
        "rng": rng, "losses": [1.0, 0.5], "wall_s": 1.5, "recipe": TrainConfig().to_dict(), "data": "ab" * 32,
    }  # fmt: skip


BAD_RECIPES = [
    ("dit", "lr", math.nan, "dit.lr"),
    ("vae", "lr", math.inf, "vae.lr"),
    ("dit", "batch_size", 0, "dit.batch_size"),
    ("vae", "steps", -5, "vae.steps"),
    ("dit", "steps", "many", "dit.steps"),
    ("dit", "stepz", 3, "unknown key dit.stepz"),
    ("dit", "lr", 0, "dit.lr"),
    ("vae", "batch_size", 2.5, "vae.batch_size"),
    ("dit", "ema_decay", 1.0, "dit.ema_decay"),
    ("vae", "betas", [0.9, 1.5], "vae.betas"),
    ("dit", "betas", [0.9], "dit.betas"),
    ("dit", "checkpoint_every", 0, "dit.checkpoint_every"),
    ("dit", "cfg_dropout", -0.1, "dit.cfg_dropout"),
    ("dit", "grad_checkpointing", 1, "dit.grad_checkpointing"),
    ("", "seed", -1, "seed"),
    ("", "stages", ["dit", "vae"], "stages"),
    ("", "stages", ["dit", "dit"], "stages"),
    ("", "model", 3, "model"),
    ("", "model", "no-such-config.json", "model 'no-such-config.json'"),
]


@pytest.mark.parametrize(("section", "key", "value", "words"), BAD_RECIPES, ids=lambda v: str(v))
def test_a_bad_recipe_is_one_line_before_the_data_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], section: str, key: str, value: object, words: str
) -> None:
    folder = tmp_path / "r"
    write_recipe(folder, tiny_architecture())
    raw = json.loads((folder / "recipe.json").read_text())
    (raw[section] if section else raw)[key] = value
    recipe = folder / "recipe.json"
    recipe.write_text(json.dumps(raw))  # NaN and Infinity as Python's json writes (and reads) them
    data, out = tmp_path / "no-such-data", tmp_path / "out"
    assert main(["train", "--config", str(recipe), "--data", str(data), "--out", str(out), "--device", "cpu"]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert str(recipe) in line and words in line and str(data) not in line, line
    assert not out.exists()


@pytest.mark.parametrize("stage", [VaeStage, DitStage, TrainConfig])
def test_every_number_of_a_recipe_has_a_range(stage: type) -> None:
    """NaN, ∞ and −1 are refused for each numeric field, a number for each flag, naming the field."""
    for f in dataclasses.fields(stage):
        default = getattr(stage(), f.name)
        if isinstance(default, bool):
            bad: list[object] = [1, "yes"]
        elif isinstance(default, (int, float)):
            bad = [math.nan, math.inf, -1, "1"]
        elif isinstance(default, tuple) and isinstance(default[0], float):
            bad = [(math.nan, 0.9), (-1.0, 0.9)]
        else:
            continue
        for value in bad:
            with pytest.raises(InputError) as e:
                stage(**{f.name: value})
            assert f.name in str(e.value) and "\n" not in str(e.value), (f.name, value, str(e.value))


def test_the_shipped_recipes_pass_their_own_checks() -> None:
    for path in sorted(RECIPES.glob("*.json")):
        recipe = TrainConfig.from_file(path)
        # a recipe trains from scratch (both stages) or fine-tunes a release's DiT (demo-inpaint: --init demo)
        assert recipe.stages in (("vae", "dit"), ("dit",)) and recipe.dit.lr > 0, path
