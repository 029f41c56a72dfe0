"""The training core on a tiny model: objective, dropout, continuation, EMA, LoRA, resume, release, DDP, faults."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from harness import scaled_timeout
from safetensors.torch import load_file, save_file
from torch import nn

from audiox_core.errors import InputError, ModelError
from audiox_core.model import longform
from audiox_core.model.audiox import AudioX
from audiox_core.model.conditioners import TextEncoder
from audiox_core.model.config import AudioXConfig
from audiox_core.model.dit import Conditions
from audiox_core.model.generate import GenerationRequest, SamplingSettings, audio_prompt_tensor, generate
from audiox_core.model.longform import SceneRequest
from audiox_core.model.runtime import load_model
from audiox_core.model.spec import PRESETS
from audiox_core.sound.audio import write_wav24
from audiox_core.train.batches import DitSampler, decode_clips
from audiox_core.train.ema import EMA
from audiox_core.train.examples import load_examples
from audiox_core.train.loop import VaeObjective, train
from audiox_core.train.lora import LoRALinear, add_lora, merge_lora
from audiox_core.train.objective import alpha_sigma, draw_dropout, sample_generator, v_loss
from audiox_core.train.recipe import RECIPES, DitStage, TrainConfig, VaeStage
from audiox_core.train.state import load_checkpoint

RATE = 8000


def tiny_architecture() -> dict:
    """demo.json shrunk: 8 kHz, a 1 s window (16 latent frames at hop 512), 8 fps at 16 px, DiT 64 × 1."""
    raw = json.loads((PRESETS / "demo.json").read_text())
    raw["sample_rate"], raw["sample_size"], raw["video_fps"] = RATE, 16 * 512, 8
    model = raw["model"]
    conds = {c["id"]: c for c in model["conditioning"]["configs"]}
    conds["video_prompt"]["config"]["video_fps"] = 8
    conds["text_prompt"]["config"]["max_length"] = 16
    conds["audio_prompt"]["config"]["sample_rate"] = RATE
    model["conditioning"]["cond_dim"] = 32
    for vae in (model["pretransform"]["config"], conds["audio_prompt"]["config"]["pretransform_config"]["config"]):
        vae["latent_dim"] = 4
        for part, width in (("encoder", 8), ("decoder", 4)):
            vae[part]["config"].update(channels=4, c_mults=[1, 2, 2], strides=[4, 8, 16], latent_dim=width)
    model["diffusion"]["config"].update(
        io_channels=4, embed_dim=64, depth=1, num_heads=2, cond_token_dim=32, global_cond_dim=16, video_fps=8
    )
    model["io_channels"] = 4
    model["diffusion"]["global_cond_ids"] = []  # the pooled-caption path has a test of its own (test_sync)
    raw["studio"].update(
        clip_vision=dict(
            hidden_size=32,
            intermediate_size=32,
            projection_dim=8,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=16,
            patch_size=8,
        ),
        video=dict(
            window_s=1, n_tokens=8, temporal_depth=1, temporal_heads=2, temporal_dim_head=8, temporal_mlp_dim=32
        ),
        audio=dict(n_tokens=15),
    )
    AudioXConfig.from_dict(raw)  # a valid official-format config
    return raw


def write_recipe(folder: Path, arch: dict, **stages: dict) -> TrainConfig:
    """A tiny recipe file (architecture beside it) with a few steps per stage; ``stages`` overrides sections."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "arch.json").write_text(json.dumps(arch))
    raw = {
        "model": str(folder / "arch.json"),
        "seed": 3,
        "stages": ["vae", "dit"],
        "vae": {"steps": 2, "batch_size": 2, "crop_s": 0.512, "checkpoint_every": 1},
        "dit": {
            "steps": 4,
            "batch_size": 4,
            "warmup_steps": 2,
            "overlap_s": 0.5,
            "checkpoint_every": 2,
            "continuation_prob": 0.5,
        },
    }
    for name, values in stages.items():
        raw[name] = values if not isinstance(values, dict) else {**raw.get(name, {}), **values}
    (folder / "recipe.json").write_text(json.dumps(raw))
    return TrainConfig.from_file(folder / "recipe.json")


def _clip(folder: Path, cid: str, seconds: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    audio = np.zeros((2, n))
    for onset in rng.uniform(0, seconds - 0.2, 3):
        i = int(onset * RATE)
        burst = rng.normal(0, 0.3, 800) * np.exp(-np.arange(800) / 150)
        audio[:, i : i + 800] += burst
    write_wav24(folder / f"{cid}.wav", np.clip(audio, -0.99, 0.99).astype(np.float32), RATE)
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc=size=64x48:rate=8:duration={seconds}"]
        + ["-pix_fmt", "yuv420p", str(folder / f"{cid}.mp4")],
        check=True,
    )
    (folder / f"{cid}.json").write_text(json.dumps({"caption": f"bursts number {seed}", "sound_class": "impact"}))


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three paired examples (no manifest): 2.5 s of noise bursts under a test-pattern picture."""
    folder = tmp_path_factory.mktemp("data")
    for k in range(3):
        _clip(folder, f"c{k:03d}", 2.5, k)
    return folder


@pytest.fixture(scope="module")
def arch() -> dict:
    return tiny_architecture()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, data: Path, arch: dict):
    """One uninterrupted run of both stages (shared by the tests that read its outputs)."""
    folder = tmp_path_factory.mktemp("run")
    recipe = write_recipe(folder / "recipe", arch)
    seen: list[tuple] = []
    result = train(recipe, data, folder / "out", device="cpu", progress=lambda *a: seen.append(a))
    return recipe, result, seen


def tiny_network(arch: dict, seed: int = 0) -> AudioX:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return AudioX(AudioXConfig.from_dict(arch))


def test_one_step_lowers_the_loss_on_a_fixed_batch(arch: dict) -> None:
    net = tiny_network(arch)
    cfg = net.cfg
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(4, cfg.dit.io_channels, cfg.latent_frames, generator=g)
    n_cond = cfg.video.n_tokens + cfg.text.max_length + cfg.audio.n_tokens  # video, text, audio prompt
    cond = torch.randn(4, n_cond, cfg.cond_dim, generator=g)
    t, noise = torch.rand(4, generator=g), torch.randn(x0.shape, generator=g)
    dit = net.model.model
    optimiser = torch.optim.AdamW(dit.parameters(), lr=1e-3)
    before = v_loss(dit, x0, cond, t, noise)
    before.backward()
    optimiser.step()
    with torch.no_grad():
        assert float(v_loss(dit, x0, cond, t, noise)) < float(before)

    vae = VaeObjective(net, VaeStage(l1_weight=0.1, kl_weight=1e-4), cfg.sample_rate)
    audio = 0.3 * torch.randn(2, 2, 4096, generator=g)
    posterior = torch.randn(2, cfg.autoencoder.latent_dim, 8, generator=g)
    optimiser = torch.optim.AdamW(net.pretransform.parameters(), lr=1e-3)
    before = vae(audio, posterior)
    before.backward()
    optimiser.step()
    with torch.no_grad():
        assert float(vae(audio, posterior)) < float(before)


def test_v_target_is_what_the_sampler_inverts(arch: dict) -> None:
    """An exact v predictor plugged into AudioX.denoise (σ = tan(πt/2)) returns x0."""
    net = tiny_network(arch)
    g = torch.Generator().manual_seed(2)
    x0, noise = torch.randn(3, 4, 16, generator=g), torch.randn(3, 4, 16, generator=g)
    t = torch.tensor([0.2, 0.5, 0.9])
    alpha, sigma = (a[:, None, None] for a in alpha_sigma(t))
    x_t = alpha * x0 + sigma * noise
    for i in range(3):
        s = torch.tan(t[i] * torch.pi / 2)
        v = alpha[i] * noise[i] - sigma[i] * x0[i]
        net.model.model.guided = lambda x, tt, kvs, scale, sync=None, pooled=None, v=v: v[None]  # the exact v at this t
        estimate = net.denoise((x_t[i] * torch.sqrt(1 + s**2))[None], s, Conditions([]), 1.0)  # x = x0 + σ·ε
        torch.testing.assert_close(estimate[0], x0[i], atol=1e-4, rtol=1e-4)


def test_ema_update_maths_and_copy() -> None:
    w = nn.Parameter(torch.tensor([1.0, 2.0]))
    ema = EMA([("w", w)], decay=0.5)
    with torch.no_grad():
        w.copy_(torch.tensor([3.0, 6.0]))
    ema.update()  # d = min(0.5, 1/10) = 0.1
    torch.testing.assert_close(ema.shadow["w"], 0.1 * torch.tensor([1.0, 2.0]) + 0.9 * torch.tensor([3.0, 6.0]))
    expected = ema.shadow["w"].clone()
    with torch.no_grad():
        w.zero_()
    for n in range(1, 30):
        d = min(0.5, (1 + n) / (10 + n))
        ema.update()
        expected = d * expected
    torch.testing.assert_close(ema.shadow["w"], expected)
    assert ema.rate() == 0.5
    restored = EMA([("w", w)], decay=0.9)
    restored.load_state_dict(ema.state_dict())
    holder = nn.Module()
    holder.w = nn.Parameter(torch.zeros(2))
    restored.copy_to(holder)
    torch.testing.assert_close(holder.w.detach(), expected)


def test_modality_dropout_rates_match_the_recipe() -> None:
    rates = dict(cfg=0.1, video=0.2, text=0.3, audio=0.4)
    draws = [draw_dropout(sample_generator(0, "dit", 7, i), **rates) for i in range(4000)]
    for name, rate in rates.items():
        field = "everything" if name == "cfg" else name
        got = sum(getattr(d, field) for d in draws) / len(draws)
        assert abs(got - rate) < 0.03, (name, got, rate)
    both = sum(d.video and d.text for d in draws) / len(draws)
    assert abs(both - 0.2 * 0.3) < 0.02  # independent draws


def test_sample_draws_do_not_depend_on_batch_layout() -> None:
    a = torch.rand(5, generator=sample_generator(0, "dit", 3, 9))
    b = torch.rand(5, generator=sample_generator(0, "dit", 3, 9))
    c = torch.rand(5, generator=sample_generator(0, "dit", 3, 8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_continuation_prompt_is_what_generate_scenes_passes(
    monkeypatch: pytest.MonkeyPatch, data: Path, arch: dict
) -> None:
    """A training window at latent start s > 0 gets the audio [s − hop, s) as generate_scenes gives window k."""
    cfg = AudioXConfig.from_dict(arch)
    overlap_s = 0.488  # hop = 8000 − 3904 = 4096 samples = 8 latent frames
    stage = dataclasses.replace(DitStage(), overlap_s=overlap_s, continuation_prob=1.0, audio_dropout=0.0)
    clips = decode_clips(load_examples(data).examples, cfg)
    latents = [(torch.zeros(4, c.audio.shape[1] // 512), torch.ones(4, c.audio.shape[1] // 512)) for c in clips]
    words = AudioX(cfg).text_words
    sampler = DitSampler(cfg, stage, clips, latents, TextEncoder(cfg.text, cfg.cond_dim, None, words=words), seed=0)
    hop, n = 4096, cfg.audio_prompt_samples
    audio = clips[0].audio
    found = None
    for step in range(200):
        prompt = sampler.sample(step, 0, 0)[0].prompt[0]
        tail = prompt[:, n - hop :]
        starts = [s for s in range(hop, audio.shape[1] + 1, 512) if torch.equal(audio[:, s - hop : s], tail)]
        if starts and torch.all(prompt[:, : n - hop] == 0):
            found = starts[0]
            break
    assert found is not None, "no continuation sample with a full hop of prompt"

    # The scene that starts hop samples before s: its window 1 starts at s in clip time.
    scene_audio = audio[:, found - hop :]
    passed = {}

    def fake_generate(model, requests, sampling, callback=None, video=None):
        for r in requests:
            passed.setdefault(r.seed, r.audio_prompt)
        return [scene_audio[:, (r.seed * hop) : (r.seed * hop) + int(round(r.seconds * RATE))] for r in requests]

    monkeypatch.setattr(longform, "generate", fake_generate)
    model = SimpleNamespace(config=cfg, device=torch.device("cpu"))
    frames = np.zeros((16, 16, 16, 3), np.uint8)
    longform.generate_scenes(model, [SceneRequest(frames, "", 0, 1.5)], SamplingSettings(), overlap_s=overlap_s)
    torch.testing.assert_close(audio_prompt_tensor(cfg, passed[1]), prompt, rtol=0, atol=0)


def test_run_writes_checkpoints_metrics_plot_and_a_release_the_pipeline_loads(trained, data: Path) -> None:
    recipe, result, seen = trained
    out = result.out
    assert (out / "vae" / "checkpoint.pt").is_file() and (out / "dit" / "checkpoint.pt").is_file()
    metrics = json.loads(result.metrics.read_text())
    assert metrics["stages"]["dit"]["done"] == 4 and len(metrics["stages"]["dit"]["losses"]) == 4
    assert metrics["data"]["examples"] == 3 and metrics["data"]["skipped"] == []
    assert metrics["seed"] == 3 and metrics["machine"]["torch"] == torch.__version__
    image = cv2.imread(str(result.loss_png))
    assert image is not None and image.shape[1] == 900
    assert [a[:3] for a in seen] == [("vae", 1, 2), ("vae", 2, 2)] + [("dit", k, 4) for k in range(1, 5)]

    loaded = load_model(str(result.model), device="cpu")
    ema = load_checkpoint(out / "dit" / "checkpoint.pt")["ema"]["shadow"]
    key = next(iter(ema))
    torch.testing.assert_close(loaded.network.state_dict()[key], ema[key])  # the EMA is what ships
    request = GenerationRequest(np.zeros((8, 16, 16, 3), np.uint8), "bursts", 0, 1.0)
    (audio,) = generate(loaded, [request], SamplingSettings(steps=2, cfg_scale=2.0))
    assert audio.shape == (2, RATE) and torch.isfinite(audio).all()


@pytest.mark.integration  # slow for the quick subset: the full suite runs it
def test_resume_repeats_the_uninterrupted_run_step_for_step(tmp_path: Path, trained, data: Path, arch: dict) -> None:
    recipe, result, _ = trained
    out = tmp_path / "out"
    first = train(recipe, data, out, device="cpu", stop_at=3)  # the VAE stage ends, the DiT stops after step 3
    assert first.model is None and first.stages["dit"].losses == result.stages["dit"].losses[:3]
    with pytest.raises(InputError, match="add --resume"):
        train(recipe, data, out, device="cpu")
    resumed = train(recipe, data, out, device="cpu", resume=True)
    assert resumed.stages["dit"].losses == result.stages["dit"].losses
    a = load_file(str(resumed.model / "model.safetensors"))
    b = load_file(str(result.model / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in b)

    other = write_recipe(tmp_path / "other", arch, dit={"lr": 1e-3})
    with pytest.raises(InputError) as e:
        train(other, data, out, device="cpu", resume=True)
    assert "different recipe" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.integration  # slow for the quick subset: the full suite runs it
def test_a_run_stopped_early_releases_what_the_shorter_recipe_trains(tmp_path: Path, data: Path, arch: dict) -> None:
    """Expected: `train --release` on a run stopped after DiT step 3 (of 4) writes the weights a run of
    the recipe with dit.steps = 3 ends with, and its card says where it stopped."""
    from audiox_core.train.loop import release

    long = write_recipe(tmp_path / "long", arch)
    short = write_recipe(tmp_path / "short", arch, dit={"steps": 3})
    stopped = train(long, data, tmp_path / "stopped", device="cpu", stop_at=3)
    assert stopped.model is None
    released = release(long, data, tmp_path / "stopped")
    whole = train(short, data, tmp_path / "short-run", device="cpu")
    a = load_file(str(released.model / "model.safetensors"))
    b = load_file(str(whole.model / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in b)
    card = (released.model / "MODEL_CARD.md").read_text()
    assert "Released at DiT step 3 of the recipe's 4" in card
    with pytest.raises(InputError, match="no DiT checkpoint to release"):
        release(long, data, tmp_path / "nothing-here")


def test_lora_merged_forward_equals_unmerged(arch: dict) -> None:
    dit = tiny_network(arch).model.model
    official = list(dit.state_dict())
    params = add_lora(dit, rank=2, alpha=4.0)
    assert all(p.requires_grad for p in params)
    assert [n for n, p in dit.named_parameters() if p.requires_grad] == [
        n for n in dict(dit.named_parameters()) if "lora_" in n
    ]
    with torch.no_grad():
        for p in params:
            p.normal_(0, 0.2)  # a trained adapter (B starts at zero)
    g = torch.Generator().manual_seed(3)
    x, t = torch.randn(2, 4, 16, generator=g), torch.rand(2, generator=g)
    cond = torch.randn(2, 9, 32, generator=g)
    with torch.no_grad():
        unmerged = dit(x, t, cond)
        merge_lora(dit)
        merged = dit(x, t, cond)
    assert list(dit.state_dict()) == official
    assert not any(isinstance(m, LoRALinear) for m in dit.modules())
    torch.testing.assert_close(merged, unmerged, atol=1e-5, rtol=1e-5)


def test_init_of_a_non_audiox_checkpoint_is_one_model_error(tmp_path: Path, data: Path, arch: dict) -> None:
    folder = tmp_path / "foreign"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(arch))
    save_file({"encoder.weight": torch.zeros(3, 3)}, str(folder / "model.safetensors"))
    recipe = write_recipe(tmp_path / "r", arch)
    with pytest.raises(ModelError) as e:
        train(recipe, data, tmp_path / "out", device="cpu", init=str(folder))
    assert "weights do not match the model config" in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "out").exists()


def test_init_fine_tunes_lora_and_saves_the_official_keys(tmp_path: Path, trained, data: Path, arch: dict) -> None:
    _, result, _ = trained
    recipe = write_recipe(tmp_path / "r", arch, dit={"steps": 2, "lora_rank": 2, "checkpoint_every": 2})
    tuned = train(recipe, data, tmp_path / "out", device="cpu", init=str(result.model))
    assert list(tuned.stages) == ["dit"]  # the release's VAE stays frozen
    base, new = load_file(str(result.model / "model.safetensors")), load_file(str(tuned.model / "model.safetensors"))
    assert list(new) == list(base)
    assert all(torch.equal(new[k], base[k]) for k in base if k.startswith("pretransform."))
    qkv = "model.model.transformer.layers.0.self_attn.to_qkv.weight"
    assert not torch.equal(new[qkv], base[qkv])
    load_model(str(tuned.model), device="cpu")


def test_recipe_errors_name_the_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "recipe.json"
    for raw, words in (
        ({"dit": {"stepz": 3}}, "unknown key dit.stepz"),
        ({"dit": {"cfg_dropout": 1.5}}, "dit.cfg_dropout"),
        ({"vae": {"steps": "many"}}, "vae.steps"),
        ({"stages": ["dit", "gan"]}, "stages"),
    ):
        path.write_text(json.dumps(raw))
        with pytest.raises(InputError) as e:
            TrainConfig.from_file(path)
        assert str(path) in str(e.value) and words in str(e.value) and "\n" not in str(e.value)
    demo = TrainConfig.from_file(RECIPES / "demo.json")
    assert demo.model == "demo" and demo.stages == ("vae", "dit")


_FSIZE_CHILD = """
import resource, signal, sys, torch
from pathlib import Path
from audiox_core.errors import PipelineError
from audiox_core.train.state import rng_states, save_checkpoint
def state(step, size):
    return {"stage": "dit", "step": step, "model": {"w": torch.ones(size)}, "optimizer": {}, "schedule": {},
            "ema": {}, "rng": rng_states(), "losses": [], "wall_s": 0.0, "recipe": {}, "data": ""}
path = Path(sys.argv[1])
save_checkpoint(path, state(1, 1000))
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
try:
    save_checkpoint(path, state(2, 1_000_000))
except PipelineError as e:
    print(type(e).__name__, str(e))
"""


def test_saving_past_the_file_size_limit_keeps_the_previous_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "dit" / "checkpoint.pt"
    proc = subprocess.run(
        [sys.executable, "-c", _FSIZE_CHILD, str(path)], capture_output=True, text=True, timeout=scaled_timeout(60)
    )
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 0 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("InputError ") and str(path) in lines[0] and "too large" in lines[0].lower()
    assert load_checkpoint(path)["step"] == 1
    assert sorted(p.name for p in path.parent.iterdir()) == ["checkpoint.pt"]


_DDP_CHILD = """
import sys
from pathlib import Path
from audiox_core.train.loop import train
from audiox_core.train.recipe import TrainConfig
train(TrainConfig.from_file(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), device="cpu")
"""


@pytest.mark.integration
@pytest.mark.long(45)
def test_two_gloo_processes_equal_one(tmp_path: Path, data: Path, arch: dict) -> None:
    write_recipe(tmp_path / "r", arch, stages=["dit"], dit={"steps": 3, "checkpoint_every": 3})
    script = tmp_path / "child.py"
    script.write_text(_DDP_CHILD)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[1])}
    for procs in (1, 2):
        launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(procs)]
        launch += ["--master_addr", "127.0.0.1", "--master_port", str(29500 + procs + os.getpid() % 1000)]
        args = [str(script), str(tmp_path / "r" / "recipe.json"), str(data), str(tmp_path / f"out{procs}")]
        proc = subprocess.run(launch + args, env=env, capture_output=True, text=True, timeout=scaled_timeout(240))
        assert proc.returncode == 0, proc.stderr[-3000:]
    one, two = (load_file(str(tmp_path / f"out{n}" / "model" / "model.safetensors")) for n in (1, 2))
    changed = [k for k in one if not torch.equal(one[k], tiny_network(arch, 3).state_dict()[k])]
    assert changed  # training moved the weights
    for k in one:
        torch.testing.assert_close(two[k], one[k], atol=1e-5, rtol=1e-4)
    m1, m2 = (json.loads((tmp_path / f"out{n}" / "metrics.json").read_text()) for n in (1, 2))
    assert m2["processes"] == 2
    np.testing.assert_allclose(m2["stages"]["dit"]["losses"], m1["stages"]["dit"]["losses"], rtol=1e-4)
