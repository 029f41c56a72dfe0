"""``--model`` values resolve by one set of rules, shared by the loader, the flows and ``doctor``."""

import json
from pathlib import Path

import pytest

from audiox_core.errors import ModelError
from audiox_core.model.config import AudioXConfig
from audiox_core.model.spec import PRESETS, load_config, resolve_model_spec
from cli.doctor import check_model

TINY = PRESETS / "tiny.json"


def release(folder: Path, *weights: str, text_kind: str | None = None) -> Path:
    """A release folder: the tiny preset as config.json and empty files of the given weights names."""
    raw = json.loads(TINY.read_text())
    if text_kind:
        raw["studio"]["text"] = {"kind": text_kind}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(raw))
    for name in weights:
        (folder / name).write_bytes(b"")
    return folder


def test_tiny_is_the_preset_with_random_weights() -> None:
    spec = resolve_model_spec("tiny")
    assert (spec.kind, spec.config_path, spec.weights_path) == ("tiny", TINY, None)
    assert spec.random_weights and not spec.needs_t5 and "RANDOM weights" in spec.label
    assert spec.config == AudioXConfig.from_json(TINY) == load_config("tiny")


def test_release_folder_prefers_safetensors_and_a_weights_file_names_itself(tmp_path: Path) -> None:
    folder = release(tmp_path / "rel", "model.ckpt", "model.safetensors")
    spec = resolve_model_spec(str(folder))
    assert (spec.kind, spec.config_path, spec.weights_path) == (
        "release",
        folder / "config.json",
        folder / "model.safetensors",
    )
    assert not spec.random_weights and spec.label == f"AudioX from {folder}"
    assert resolve_model_spec(str(folder / "model.ckpt")).weights_path == folder / "model.ckpt"
    assert resolve_model_spec(str(release(tmp_path / "t5", "model.ckpt", text_kind="t5"))).needs_t5


def broken(tmp_path: Path, case: str) -> str:
    """A --model value that is wrong in one way."""
    if case == "missing":
        return str(tmp_path / "nowhere")
    if case == "no-config":
        (tmp_path / "model.ckpt").write_bytes(b"")
        return str(tmp_path)
    if case == "bad-config":
        (tmp_path / "config.json").write_text("{}")
        return str(tmp_path)
    if case == "no-weights":
        return str(release(tmp_path))
    return str(release(tmp_path, "model.ckpt") / "config.json")  # "not-weights"


BROKEN = {
    "demo": "^demo: no trained demo model",
    "missing": "nowhere: model folder not found$",
    "no-config": r": no config\.json \(expected the official AudioX release layout\)$",
    "bad-config": r"config\.json: missing key model_type$",
    "no-weights": r": no model\.ckpt or model\.safetensors",
    "not-weights": r"config\.json: not a weights file",
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_doctor_refuses_what_the_loader_refuses_in_the_same_words(
    tmp_path: Path, case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("audiox_core.model.spec.DEMO_FOLDER", tmp_path / "no-demo")  # a checkout without the weights
    value = "demo" if case == "demo" else broken(tmp_path, case)
    with pytest.raises(ModelError, match=BROKEN[case]) as refused:
        resolve_model_spec(value)
    check = check_model(value)
    assert not check.ok and check.detail == str(refused.value) and "tiny (random test model)" in check.fix


def test_doctor_accepts_tiny_and_a_release_and_asks_for_t5_only_when_needed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AUDIOX_T5_DIR", raising=False)
    assert check_model("tiny").ok
    assert check_model(str(release(tmp_path / "bytes", "model.ckpt"))).ok
    official = release(tmp_path / "official", "model.ckpt", text_kind="t5")
    check = check_model(str(official))
    hint = "no T5 folder given (set AUDIOX_T5_DIR to a local t5-base folder)"
    assert not check.ok and check.detail == f"{official / 'model.ckpt'} found, but {hint}"
    (tmp_path / "t5").mkdir()
    (tmp_path / "t5" / "config.json").write_text("{}")
    monkeypatch.setenv("AUDIOX_T5_DIR", str(tmp_path / "t5"))
    assert check_model(str(official)).ok
