import json
from pathlib import Path

import pytest
import torch
from conftest import AUDIOX_FACTS, needs_audiox_facts

from audiox_core.model.config import AudioXConfig
from audiox_core.model.parity_weights import synthetic_state_dict
from audiox_core.model.spec import PRESETS
from cli.main import main

TINY = PRESETS / "tiny.json"


@needs_audiox_facts
def test_manifest_command_equals_official_keys(capsys) -> None:
    assert main(["model", "manifest", "--config", str(AUDIOX_FACTS / "config_base.json")]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads((AUDIOX_FACTS / "keys_base.json").read_text())


@pytest.fixture
def tiny_ckpt(tmp_path: Path) -> Path:
    path = tmp_path / "model.ckpt"
    torch.save({"state_dict": synthetic_state_dict(AudioXConfig.from_json(TINY), seed=3)}, path)
    return path


def test_check_reports_counts_dtype_and_hash(tiny_ckpt: Path, capsys) -> None:
    assert main(["model", "check", "--config", str(TINY), "--ckpt", str(tiny_ckpt)]) == 0
    out = capsys.readouterr().out
    assert "loads strictly" in out and "float32 ×" in out and "dit" in out
    from audiox_core.store.files import sha256_file

    assert sha256_file(tiny_ckpt) in out


def test_check_rejects_another_models_checkpoint(tiny_ckpt: Path, tmp_path: Path, capsys) -> None:
    sd = torch.load(tiny_ckpt, weights_only=True)["state_dict"]
    sd["model.model.to_cond_embed.0.weight"] = torch.zeros(3, 3)
    sd["foreign.layer.weight"] = torch.zeros(1)
    bad = tmp_path / "other.ckpt"
    torch.save({"state_dict": sd}, bad)
    assert main(["model", "check", "--config", str(TINY), "--ckpt", str(bad)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0]
    assert (
        "1 unexpected: foreign.layer.weight" in err[0]
        and "mis-shaped: model.model.to_cond_embed.0.weight [3, 3]" in err[0]
    )


def test_check_rejects_a_file_that_is_not_a_checkpoint(tmp_path: Path, capsys) -> None:
    junk = tmp_path / "model.ckpt"
    junk.write_bytes(b"not a pickle")
    assert main(["model", "check", "--config", str(TINY), "--ckpt", str(junk)]) == 1
    assert "not a readable checkpoint" in capsys.readouterr().err


def test_load_model_from_a_release_folder(tiny_ckpt: Path) -> None:
    from audiox_core.model.runtime import load_model

    (tiny_ckpt.parent / "config.json").write_text(TINY.read_text())
    model = load_model(str(tiny_ckpt.parent), device="cpu")
    assert not model.random_weights and len(model.checkpoint_sha256) == 64
    assert torch.equal(
        model.network.state_dict()["model.model.preprocess_conv.weight"],
        synthetic_state_dict(model.config, 3)["model.model.preprocess_conv.weight"],
    )


def test_official_text_encoder_needs_a_t5_folder(tiny_ckpt: Path, tmp_path: Path) -> None:
    from audiox_core.errors import ModelError
    from audiox_core.model.runtime import load_model

    raw = json.loads(TINY.read_text())
    raw["studio"]["text"] = {"kind": "t5"}  # the official text conditioner: T5 from a local folder
    (tiny_ckpt.parent / "config.json").write_text(json.dumps(raw))
    with pytest.raises(ModelError, match=r"nowhere: T5 folder missing or has no config.json \(set AUDIOX_T5_DIR"):
        load_model(str(tiny_ckpt.parent), device="cpu", t5_dir=tmp_path / "nowhere")


def test_zero_frame_video_is_an_input_error(tmp_path: Path) -> None:
    import subprocess

    from audiox_core.errors import InputError
    from audiox_core.video.probe import probe

    path = tmp_path / "zero.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=64x36:rate=25",
            "-frames:v",
            "0",
            "-c:v",
            "libx264",
            str(path),
        ],
        check=True,
    )
    with pytest.raises(InputError, match=f"{path}: no video stream"):
        probe(path)
