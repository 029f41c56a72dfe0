"""The sound follows the picture: time-aligned video conditioning, the words text encoder, the
autoencoder's transient losses, task prompts, and the option-off path reproducing earlier weights."""

from __future__ import annotations

import json
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from audiox_core.model.audiox import AudioX
from audiox_core.model.checkpoint import state_dict_sha256
from audiox_core.model.config import AudioXConfig, TaskPrompts
from audiox_core.model.generate import GenerationRequest, SamplingSettings, generate
from audiox_core.model.runtime import LoadedModel, load_model
from audiox_core.model.spec import PRESETS, resolve_model_spec
from audiox_core.model.sync import resample_to_latents
from audiox_core.reel.cues import look_words, measure
from audiox_core.reel.cuesheet import draft_sheet
from audiox_core.sound.audio import write_wav24
from audiox_core.train.batches import Clip, vae_crops
from audiox_core.train.discriminator import MultiResolutionDiscriminator
from audiox_core.train.loop import DiscriminatorStep, VaeObjective, calibrate_fresh_vae, train
from audiox_core.train.recipe import TrainConfig, VaeStage
from audiox_core.train.spectral import onset_loss
from audiox_core.video.scenes import Scene
from tests.test_train import RATE, _clip, tiny_architecture

OFFICIAL = Path(__file__).resolve().parents[2] / "shared" / "audiox" / "config_base.json"


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three paired examples of noise bursts under a test pattern (test_train's)."""
    folder = tmp_path_factory.mktemp("data")
    for k in range(3):
        _clip(folder, f"c{k:03d}", 2.5, k)
    return folder


def _config(sync: bool, words: bool = True) -> dict:
    raw = tiny_architecture()
    if sync:
        raw["studio"]["sync"] = {"dim": 16, "channels": 4, "kernel": 3}
    else:
        raw["studio"].pop("sync", None)
    if not words:
        raw["studio"]["text"] = {"kind": "byte-t5"}
    return raw


def _loaded(raw: dict, seed: int = 0) -> LoadedModel:
    from audiox_core.model.conditioners import TextEncoder

    cfg = AudioXConfig.from_dict(raw)
    torch.manual_seed(seed)
    net = AudioX(cfg).eval()
    text = TextEncoder(cfg.text, cfg.cond_dim, None, words=net.text_words)
    return LoadedModel("t", "t", cfg, net, text, "0" * 64, True, torch.device("cpu"))


def _frames(n: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (n, size, size, 3), dtype=np.uint8)


# -- the aligned path ------------------------------------------------------------------------------


def test_aligned_path_at_initialisation_gives_the_model_without_it() -> None:
    """sync_proj is zero: every output equals the model without the branch, whose weights are the same
    (our parts are made outside the global random stream)."""
    with_sync, without = _loaded(_config(sync=True)), _loaded(_config(sync=False))
    shared = without.network.state_dict()
    extra = {k for k in with_sync.network.state_dict() if k not in shared}
    assert extra and all("sync" in k for k in extra)
    assert all(torch.equal(v, with_sync.network.state_dict()[k]) for k, v in shared.items())
    cfg = with_sync.config
    request = GenerationRequest(_frames(cfg.video.n_frames, 16), "a ball", 3, 1.0)
    sampling = SamplingSettings(steps=4)
    (a,) = generate(with_sync, [request], sampling)
    (b,) = generate(without, [request], sampling)
    assert torch.equal(a, b)
    # And once the projection learns, the picture's timing reaches the output.
    with torch.no_grad():
        with_sync.network.model.model.sync_proj.normal_()
    (c,) = generate(with_sync, [request], sampling)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("fps", [Fraction(24), Fraction(25), Fraction(30000, 1001)])
@pytest.mark.parametrize("window_start_s", [0.0, 1.37])
def test_a_one_frame_impulse_lands_on_the_latent_frames_of_its_time(fps: Fraction, window_start_s: float) -> None:
    """Frame j of the clip is shown at j / fps; a window starting mid-clip takes the frames from the one
    at or before its start (as training and the long-form generator do) and the offset between them."""
    rate, hop, latent_frames = 16000, 512, 160
    hop_s = hop / rate
    first = int(window_start_s * fps)  # the frame shown when the window starts
    offset = window_start_s - first / float(fps)
    assert 0 <= offset < 1 / float(fps)
    for j in (first + 3, first + 40, first + 100):
        features = torch.zeros(1, 120, 1)
        features[0, j - first, 0] = 1.0
        out = resample_to_latents(features, float(fps), torch.tensor([offset]), latent_frames, hop_s)[0, :, 0]
        t = j / float(fps) - window_start_s  # the frame's time in the window
        expected = int(t / hop_s)  # the latent frame that holds it
        assert abs(int(out.argmax()) - expected) <= 1, (j, int(out.argmax()), expected)
        # Every latent frame that reads the impulse lies within one video frame of it.
        lit = torch.nonzero(out > 0)[:, 0].double()
        centres = (lit + 0.5) * hop_s
        assert torch.all((centres - t).abs() < 1 / float(fps) + 1e-9)


def test_an_all_black_picture_is_a_picture() -> None:
    """Absence is said by giving no frames; a black frame (a fade to black) is conditioned on."""
    model = _loaded(_config(sync=True))
    cfg = model.config
    black = np.zeros((cfg.video.n_frames, 16, 16, 3), np.uint8)
    sampling = SamplingSettings(steps=3)
    (dark,) = generate(model, [GenerationRequest(black, "", 1, 1.0)], sampling)
    (none,) = generate(model, [GenerationRequest(black[:0], "", 1, 1.0)], sampling)
    assert not torch.equal(dark, none)


# -- the words text encoder ----------------------------------------------------------------------


def test_words_encoder_reads_its_vocabulary_and_learns() -> None:
    model = _loaded(_config(sync=False))
    words = model.network.text_words
    assert words is not None and model.text_encoder.trainable
    ids, mask = words.tokenize(["Impact: a BALL bounces, twice!", "zzz qqq"])
    vocab = model.config.text.vocabulary
    assert [int(i) for i in ids[0, :5]] == [vocab.index(w) + 2 for w in ("impact", "a", "ball", "bounces", "twice")]
    assert ids[1, :2].tolist() == [1, 1] and int(mask[1].sum()) == 2  # unknown words: one shared token
    cfg = model.config
    video = torch.zeros(1, cfg.video.n_frames, 3, 16, 16)
    audio = torch.zeros(1, 2, cfg.audio_prompt_samples)
    noise = torch.zeros(1, cfg.audio.autoencoder.latent_dim, cfg.audio.n_tokens)
    cond = model.network.condition(video, ids[:1], audio, noise, torch.tensor([False]))
    cond.sum().backward()
    assert words.embedding.weight.grad is not None and words.embedding.weight.grad.abs().sum() > 0


def _global_text(raw: dict) -> dict:
    raw["model"]["diffusion"]["global_cond_ids"] = ["text_prompt"]
    raw["model"]["diffusion"]["config"]["global_cond_dim"] = raw["model"]["conditioning"]["cond_dim"]
    return raw


def test_the_pooled_caption_reaches_the_dit_and_leaves_the_unconditional_rows_alone() -> None:
    """global_cond_ids [text_prompt]: the mean of a caption's word tokens (zero for none) goes through
    to_global_embed onto the timestep token of the conditional rows; it learns with the DiT."""
    model = _loaded(_global_text(_config(sync=False)))
    net, cfg = model.network, model.config
    ids, _ = net.text_words.tokenize(["a ball bounces", "door slams", ""])
    pooled = net.pooled_text(ids)
    tokens = net.text_tokens(ids)
    assert torch.allclose(pooled[0], tokens[0, :3].mean(0)) and torch.allclose(pooled[1], tokens[1, :2].mean(0))
    assert torch.equal(pooled[2], torch.zeros_like(pooled[2]))
    dit = net.model.model
    x = torch.randn(3, cfg.dit.io_channels, cfg.latent_frames)
    t = torch.full((3,), 0.5)
    kvs = dit.condition(torch.zeros(2, 4, cfg.cond_dim))  # two conditional rows, the third unconditional
    with torch.no_grad():
        plain, with_text = dit.forward_once(x, t, kvs), dit.forward_once(x, t, kvs, pooled=pooled[:2])
    assert not torch.allclose(plain[:2], with_text[:2]) and not torch.allclose(with_text[0], with_text[1])
    assert torch.equal(plain[2], with_text[2])
    dit.forward_once(x, t, kvs, pooled=net.pooled_text(ids)[:2]).square().mean().backward()
    assert dit.to_global_embed[0].weight.grad.abs().sum() > 0
    assert net.text_words.embedding.weight.grad.abs().sum() > 0
    # AudioX's own configs have no global condition; any other id is refused in one line.
    assert _loaded(_config(sync=False)).network.pooled_text(ids) is None
    raw = _config(sync=False)
    raw["model"]["diffusion"]["global_cond_ids"] = ["video_prompt"]
    with pytest.raises(Exception, match="global_cond_ids must be"):
        AudioXConfig.from_dict(raw)


def test_every_word_of_the_training_captions_is_in_the_demo_vocabulary() -> None:
    from audiox_core.model.conditioners import words
    from audiox_core.train.builder import AMBIENCE_WORDS, MUSIC_WORDS, SOUNDS, ClipSpec, render_clip

    vocabulary = set(AudioXConfig.from_json(PRESETS / "demo.json").text.vocabulary)
    train_beds = {Path(p).stem for c in ("ambience", "music") for p in SOUNDS[c]["train"]}
    for kind in ("bounce", "collide", "door", "pass", "walk", "ambience", "music"):
        for seed in range(6):
            bed = {**AMBIENCE_WORDS, **MUSIC_WORDS}[sorted(train_beds)[seed % len(train_beds)]]
            caption = render_clip(ClipSpec(kind, "train", seed=seed, seconds=2.0), words=bed).caption
            assert set(words(caption)) <= vocabulary, caption


# -- prompts that fit the model ------------------------------------------------------------------


def test_drafted_prompts_come_from_the_model_spec() -> None:
    demo = AudioXConfig.from_json(PRESETS / "demo.json").prompts
    tiny = resolve_model_spec("tiny").config.prompts
    assert demo.foley != TaskPrompts().foley and tiny == TaskPrompts()
    assert TaskPrompts().foley == "Generate general audio for the video"
    scenes = [Scene(i, i * 24, (i + 1) * 24, i * 1.0, (i + 1) * 1.0, "", "") for i in range(3)]
    frames = _frames(24, 32)
    looks = [measure(frames)] * 3
    for task in (demo, tiny):
        sheet = draft_sheet("r", scenes, Fraction(24), looks, 5, task)
        assert {c.prompt for c in sheet.cues if c.kind == "foley"} == {task.foley}
        assert {c.prompt for c in sheet.cues if c.kind == "music"} == {task.music}
        assert all(c.look for c in sheet.cues)


@pytest.mark.skipif(not OFFICIAL.is_file(), reason="shared/audiox/config_base.json (the official config) is absent")
def test_official_config_keeps_its_parts_and_task_prompts() -> None:
    cfg = AudioXConfig.from_json(OFFICIAL)
    assert cfg.sync.dim == 0 and cfg.dit.sync_dim == 0 and cfg.text.kind == "t5"
    assert cfg.prompts == TaskPrompts()


def test_a_small_ball_crossing_a_still_room_is_not_still() -> None:
    """The bouncing ball of the demo reel at the demo model's 32 px: a few per cent of the picture."""
    from audiox_core.train.builder import ClipSpec, render_clip

    clip = render_clip(ClipSpec("bounce", "heldout", seed=101, seconds=3.0, width=320, height=180))
    small = np.stack([np.asarray(torch.nn.functional.interpolate(torch.from_numpy(f).permute(2, 0, 1)[None].float(), size=(32, 32), mode="area")[0].permute(1, 2, 0).byte()) for f in clip.frames])  # fmt: skip
    assert look_words(measure(small))["pace"] != "a still, quiet shot"
    still = np.repeat(small[:1], len(small), axis=0)
    assert look_words(measure(still))["pace"] == "a still, quiet shot"


# -- the autoencoder's transient terms -----------------------------------------------------------


def test_onset_loss_is_zero_on_itself_and_sees_a_smeared_onset() -> None:
    rng = np.random.default_rng(0)
    x = torch.zeros(1, 2, 16000)
    x[..., 8000:8400] = torch.from_numpy(rng.normal(0, 0.5, 400)).float()
    smeared = torch.nn.functional.avg_pool1d(x, 401, stride=1, padding=200) * 3
    assert onset_loss(x, x, 16000) == 0
    assert onset_loss(smeared, x, 16000) > 0.1


def test_crops_placed_on_onsets_hold_one() -> None:
    cfg = AudioXConfig.from_dict(tiny_architecture())
    crop = 4 * cfg.autoencoder.hop
    clip = Clip("c", torch.zeros(2, 40 * cfg.autoencoder.hop), np.zeros((1, 16, 16, 3), np.uint8), "", "")
    onsets = [[30 * cfg.autoencoder.hop]]
    for step in range(6):
        starts = vae_crops([clip], 0, step, [0, 1], [0, 0], crop, cfg, onsets=onsets, onset_prob=1.0)
        assert starts[0].shape == (2, 2, crop)
    # Where the crop lands: mark the onset sample and look for it.
    marked = Clip("c", torch.zeros(2, 40 * cfg.autoencoder.hop), clip.frames, "", "")
    marked.audio[:, onsets[0][0]] = 1.0
    for step in range(6):
        audio, _ = vae_crops([marked], 0, step, [0], [0], crop, cfg, onsets=onsets, onset_prob=1.0)
        assert audio.abs().max() > 0
    plain, _ = vae_crops([marked], 0, 0, [0], [0], crop, cfg)
    again, _ = vae_crops([marked], 0, 0, [0], [0], crop, cfg, onsets=onsets, onset_prob=0.0)
    assert torch.equal(plain, again)  # probability 0 crops exactly as before


def test_discriminator_step_learns_and_calibration_sets_the_level() -> None:
    cfg = AudioXConfig.from_dict(tiny_architecture())
    torch.manual_seed(0)
    net = AudioX(cfg)
    audio = torch.randn(2, 2, 16 * cfg.autoencoder.hop) * 0.05
    calibrate_fresh_vae(net.pretransform, audio)
    with torch.no_grad():
        mean, std = net.pretransform.encode_posterior(audio)
        recon = net.pretransform.decode(mean)
    assert abs(float(mean.std()) - 1) < 1e-3 and 0.01 < float(std.mean()) < 0.2
    assert abs(float(recon.pow(2).mean().sqrt() / audio.pow(2).mean().sqrt()) - 1) < 1e-3
    stage = VaeStage(adversarial_weight=0.5, feature_weight=1.0, adversarial_from=1, onset_weight=1.0)
    objective = VaeObjective(net, stage, cfg.sample_rate, MultiResolutionDiscriminator())
    side = DiscriminatorStep(objective, stage)
    before = {k: v.clone() for k, v in objective.discriminator.state_dict().items()}
    noise = torch.zeros(2, cfg.autoencoder.latent_dim, 16)
    for step in range(2):
        side.before(step)
        objective(audio, noise).backward()
        side.after(step)
    after = objective.discriminator.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    restored = DiscriminatorStep(VaeObjective(net, stage, cfg.sample_rate, MultiResolutionDiscriminator()), stage)
    restored.load_state_dict(side.state_dict())
    assert all(torch.equal(restored.objective.discriminator.state_dict()[k], after[k]) for k in after)


# -- the option off reproduces earlier weights ---------------------------------------------------

# The weights sha256 that commit 8af3f6f (before the aligned branch, the words encoder and the
# transient losses) trains from this recipe and data; printed by the same steps run there.
GOLDEN_SHA256 = "0bc2d156bdeea980b7c7a1ba28ec4e549ec80958a358fdf83dfbf8e43541d846"


def test_recipe_with_the_options_off_reproduces_earlier_weights(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    for k in range(2):
        rng = np.random.default_rng(k)
        audio = np.zeros((2, int(2.5 * RATE)))
        for onset in rng.uniform(0, 2.3, 3):
            i = int(onset * RATE)
            audio[:, i : i + 800] += rng.normal(0, 0.3, 800) * np.exp(-np.arange(800) / 150)
        write_wav24(folder / f"c{k}.wav", np.clip(audio, -0.99, 0.99).astype(np.float32), RATE)
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=8:duration=2.5"]
            + ["-threads", "1", "-pix_fmt", "yuv420p", str(folder / f"c{k}.mp4")],
            check=True,
        )
        (folder / f"c{k}.json").write_text(json.dumps({"caption": f"bursts number {k}", "sound_class": "impact"}))
    raw = _config(sync=False, words=False)
    raw["studio"].pop("prompts", None)
    raw["studio"].pop("_comment", None)
    from tests.test_train import write_recipe

    # test_train's tiny recipe (its save intervals do not change a step's weights), 3 DiT steps, and
    # no pipeline prompts (their text is the model's task prompt now, the measured look before).
    recipe = write_recipe(tmp_path, raw, dit={"steps": 3, "pipeline_prompt_prob": 0.0})
    result = train(recipe, folder, tmp_path / "out", device="cpu")
    from safetensors.torch import load_file

    assert state_dict_sha256(load_file(str(result.model / "model.safetensors"))) == GOLDEN_SHA256


def test_demo_model_loads_with_its_parts() -> None:
    model = load_model("demo", device="cpu")
    assert model.config.sync.dim > 0 and model.network.text_words is not None


def test_a_release_fine_tuned_with_the_branch_starts_as_the_release(tmp_path: Path) -> None:
    """--init with ``add_sync``: the release's weights as they are, the branch's projection zero, so
    the model that training starts from gives the release's outputs."""
    from audiox_core.train.loop import _network
    from audiox_core.train.state import save_release

    raw = _config(sync=False)
    release = tmp_path / "release"
    original = _loaded(raw, seed=4)
    save_release(release, raw, original.network.state_dict())
    recipe = TrainConfig.from_dict({"model": "demo", "add_sync": {"dim": 16, "channels": 4, "kernel": 3}})
    net, cfg, written = _network(recipe, str(release))
    assert cfg.sync.dim == 16 and written["studio"]["sync"]["dim"] == 16
    from audiox_core.model.conditioners import TextEncoder

    extended = LoadedModel(
        "x",
        "x",
        cfg,
        net.eval(),
        TextEncoder(cfg.text, cfg.cond_dim, None, words=net.text_words),
        "0" * 64,
        False,
        torch.device("cpu"),
    )
    request = GenerationRequest(_frames(cfg.video.n_frames, 16), "a ball", 2, 1.0)
    (a,) = generate(original, [request], SamplingSettings(steps=3))
    (b,) = generate(extended, [request], SamplingSettings(steps=3))
    assert torch.equal(a, b)
    with pytest.raises(Exception, match="add_sync"):
        TrainConfig.from_dict({"model": "demo", "add_sync": {"width": 3}})


def test_latent_scale_divides_what_the_dit_learns_and_multiplies_what_it_decodes(tmp_path: Path) -> None:
    import dataclasses

    from audiox_core.train.batches import DitSampler
    from audiox_core.train.recipe import DitStage

    raw = _config(sync=False)
    raw["model"]["pretransform"]["scale"] = 4.0
    cfg = AudioXConfig.from_dict(raw)
    assert cfg.latent_scale == 4.0 and AudioXConfig.from_dict(_config(sync=False)).latent_scale == 1.0
    bad = json.loads(json.dumps(raw))
    bad["model"]["pretransform"]["scale"] = 0
    with pytest.raises(Exception, match=r"model\.pretransform\.scale must be a number above 0"):
        AudioXConfig.from_dict(bad)
    model = _loaded(raw)
    frames = np.zeros((8, 16, 16, 3), np.uint8)
    clip = Clip("c", torch.zeros(2, 40 * 512), frames, "a", "a")
    latents = [(torch.randn(cfg.autoencoder.latent_dim, 40), torch.full((cfg.autoencoder.latent_dim, 40), 0.1))]
    words = model.network.text_words
    from audiox_core.model.conditioners import TextEncoder

    text = TextEncoder(cfg.text, cfg.cond_dim, None, words=words)
    scaled = DitSampler(cfg, DitStage(), [clip], latents, text, 0).sample(0, 0, 0)[0].x0
    plain = (
        DitSampler(dataclasses.replace(cfg, latent_scale=1.0), DitStage(), [clip], latents, text, 0)
        .sample(0, 0, 0)[0]
        .x0
    )
    torch.testing.assert_close(scaled * 4.0, plain)


def test_training_writes_the_latents_spread_as_the_release_scale(tmp_path: Path, clips: Path) -> None:
    from tests.test_train import write_recipe

    recipe = write_recipe(
        tmp_path / "r", _config(sync=True), dit={"steps": 2, "scale_latents": True, "onset_weight": 0.5}
    )
    result = train(recipe, clips, tmp_path / "out", device="cpu")
    written = json.loads((result.model / "config.json").read_text())
    scale = written["model"]["pretransform"]["scale"]
    assert scale > 0 and scale != 1.0
    assert json.loads((tmp_path / "out" / "dit" / "latent_scale.json").read_text())["scale"] == scale
    loaded = load_model(str(result.model), device="cpu")
    assert loaded.config.latent_scale == scale and loaded.config.sync.dim == 16
    with pytest.raises(Exception, match="scale_latents"):
        train(recipe, clips, tmp_path / "out2", device="cpu", init=str(result.model))


MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"


@pytest.mark.skipif(not (MEDIA / "MANIFEST.json").is_file(), reason=f"shared media not found at {MEDIA}")
def test_the_vae_ceiling_is_checked_between_the_stages(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A random autoencoder keeps no onsets: the check says so, names the missed targets and writes them."""
    import logging

    from audiox_core.train.builder import build_dataset
    from audiox_core.train.loop import check_vae_ceiling

    build_dataset(tmp_path / "data", media=MEDIA, clips=1, heldout=5, seed=2, seconds=3.0, sample_rate=RATE)
    net = AudioX(AudioXConfig.from_dict(_config(sync=False)))
    with caplog.at_level(logging.INFO, logger="audiox_core.train.loop"):
        ceiling = check_vae_ceiling(net, tmp_path / "data", RATE, tmp_path / "ceiling.json")
    assert ceiling is not None and ceiling.overall.events > 0
    assert any("vae_ceiling hit_rate=" in r.getMessage() for r in caplog.records)
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warned and "hit rate" in warned[0]
    written = json.loads((tmp_path / "ceiling.json").read_text())
    assert written["events"] == ceiling.overall.events and written["short_of"] == ceiling.short_of


def test_a_finished_stage_extended_on_resume_equals_the_longer_run(tmp_path: Path, clips: Path) -> None:
    """``steps`` says where a stage stops, not what its steps compute: 2 steps then --resume to 3 gives
    the weights of 3 steps in one go."""
    from safetensors.torch import load_file

    from tests.test_train import write_recipe

    arch = _config(sync=False)
    vae = {"steps": 3, "onset_weight": 1.0, "onset_crop_prob": 0.5, "calibrate_init": True}
    whole = write_recipe(tmp_path / "a", arch, stages=["vae"], vae=vae)
    once = train(whole, clips, tmp_path / "once", device="cpu")
    short = write_recipe(tmp_path / "b", arch, stages=["vae"], vae={**vae, "steps": 2})
    train(short, clips, tmp_path / "twice", device="cpu")
    longer = write_recipe(tmp_path / "b", arch, stages=["vae"], vae=vae)  # the same recipe file, steps 3
    again = train(longer, clips, tmp_path / "twice", device="cpu", resume=True)
    a, b = load_file(str(once.model / "model.safetensors")), load_file(str(again.model / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a if k.startswith("pretransform."))
    other = write_recipe(tmp_path / "b", arch, stages=["vae"], vae={**vae, "steps": 4, "lr": 1e-3})
    with pytest.raises(Exception, match="different recipe"):
        train(other, clips, tmp_path / "twice", device="cpu", resume=True)


def test_band_loss_hears_a_low_thump_that_a_bin_average_barely_does() -> None:
    from audiox_core.train.spectral import band_loss, compressed_spectrogram

    t = torch.arange(16384) / 16000
    thump = torch.sin(2 * torch.pi * 90 * t) * torch.exp(-t / 0.08) * (t > 0.3)
    click = torch.zeros_like(t)
    click[9000:9040] = torch.linspace(1, 0, 40)
    full = torch.stack([thump + 0.3 * click] * 2)[None]
    no_thump = torch.stack([0.3 * click] * 2)[None]
    bins = (compressed_spectrogram(full.mean(1), 16000) - compressed_spectrogram(no_thump.mean(1), 16000)).abs().mean()
    assert band_loss(full, full) == 0
    assert band_loss(no_thump, full) > 3 * bins


def test_prompt_tokens_of_a_words_encoder_are_its_words() -> None:
    from audiox_core.model.prompt_length import prompt_tokens

    cfg = AudioXConfig.from_json(PRESETS / "demo.json")
    model = _loaded(_config(sync=False))
    ids, mask = model.network.text_words.tokenize(["impact: a ball, twice", "x " * 100])
    assert prompt_tokens(cfg.text, ["impact: a ball, twice", "x " * 100], None) == [4, 100]
    assert int(mask[0].sum()) == 4 and int(mask[1].sum()) == model.config.text.max_length
