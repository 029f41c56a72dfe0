"""Regenerating spans of a cue: sampler guidance on every sampler, the splice that keeps the rest
bit for bit, and the spans' checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audiox_core.errors import InputError
from audiox_core.model.audiox import AudioX
from audiox_core.model.config import AudioXConfig
from audiox_core.model.dit import Conditions
from audiox_core.model.inpaint import EDGE_FADE_S, Span, checked_spans, guided, keep_mask, splice
from audiox_core.model.sampling import SAMPLERS, NoiseSource, sigma_schedule
from tests.test_train import tiny_architecture


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_every_sampler_ends_on_the_previous_latents_outside_the_span(name: str) -> None:
    cfg = AudioXConfig.from_dict(tiny_architecture())
    torch.manual_seed(0)
    net = AudioX(cfg).eval()
    frames, channels = cfg.latent_frames, cfg.dit.io_channels
    g = torch.Generator().manual_seed(1)
    known = torch.randn(1, channels, frames, generator=g)
    cond = torch.randn(1, 8, cfg.cond_dim, generator=g)
    kvs = net.cross_attention_kv(cond)
    hop_s = cfg.autoencoder.hop / cfg.sample_rate
    keep = keep_mask([Span(4 * hop_s, 9 * hop_s)], frames, hop_s)
    assert keep.tolist() == [k < 4 or k >= 9 for k in range(frames)]
    sigmas = sigma_schedule(8, 0.03, 80.0)
    noise = NoiseSource([torch.Generator().manual_seed(2)])
    x = noise.draw((channels, frames)) * sigmas[0]
    fixed = torch.randn(1, channels, frames, generator=g)
    with torch.no_grad():
        plain = SAMPLERS[name](lambda x, s: net.denoise(x, s, Conditions(kvs), 3.0), x.clone(), sigmas, noise=noise)
        noise = NoiseSource([torch.Generator().manual_seed(2)])
        noise.draw((channels, frames))
        steered = SAMPLERS[name](
            guided(lambda x, s: net.denoise(x, s, Conditions(kvs), 3.0), known, keep, fixed), x, sigmas, noise=noise
        )
    assert torch.equal(steered[..., keep], known[..., keep])
    assert not torch.allclose(steered[..., ~keep], known[..., ~keep])
    assert not torch.allclose(steered[..., ~keep], plain[..., ~keep])  # the kept part steers the span


@pytest.mark.parametrize("span", [Span(0.0, 0.4), Span(0.3, 0.55), Span(0.7, 1.0)])
def test_the_splice_keeps_every_sample_outside_the_span(span: Span) -> None:
    rate = 8000
    rng = np.random.default_rng(0)
    previous = rng.normal(0, 0.1, (2, rate)).astype(np.float32)
    new = rng.normal(0, 0.1, (2, rate)).astype(np.float32)
    out = splice(previous, new, [span], rate)
    a, b = int(span.start_s * rate), int(span.end_s * rate)
    assert np.array_equal(out[:, :a], previous[:, :a]) and np.array_equal(out[:, b:], previous[:, b:])
    fade = int(EDGE_FADE_S * rate)
    # an edge at the audio's own start or end joins nothing: the new sound runs up to it, unfaded
    inner_a, inner_b = (a + fade if a > 0 else 0), (b - fade if b < rate else rate)
    assert np.array_equal(out[:, inner_a:inner_b], new[:, inner_a:inner_b])
    for edge in (range(a, a + fade) if a > 0 else None, range(b - fade, b) if b < rate else None):
        if edge is not None:
            ramp, old, made = out[:, edge], previous[:, edge], new[:, edge]
            assert np.abs(ramp - old).max() > 0 and np.abs(ramp - made).max() > 0


def test_spans_are_checked_in_one_line_naming_the_entry() -> None:
    hop = 0.032
    assert checked_spans([Span(2, 3), Span(0, 1)], 5.0, hop, "F003") == [Span(0, 1), Span(2, 3)]
    for spans, words in (
        ([Span(4, 6)], "outside the cue"),
        ([Span(-1, 1)], "outside the cue"),
        ([Span(3, 2)], "ends before it starts"),
        ([Span(1, 1.01)], "shorter than one latent frame"),
        ([Span(1, 3), Span(2, 4)], "overlaps"),
    ):
        with pytest.raises(InputError, match=words) as e:
            checked_spans(spans, 5.0, hop, "F003")
        assert str(e.value).startswith("F003: span") and "\n" not in str(e.value)


def test_generate_steers_an_inpainting_request_and_leaves_its_batch_neighbour_alone() -> None:
    from audiox_core.model.conditioners import TextEncoder
    from audiox_core.model.generate import GenerationRequest, SamplingSettings, generate
    from audiox_core.model.runtime import LoadedModel

    cfg = AudioXConfig.from_dict(tiny_architecture())
    torch.manual_seed(0)
    net = AudioX(cfg).eval()
    model = LoadedModel(
        "t",
        "t",
        cfg,
        net,
        TextEncoder(cfg.text, cfg.cond_dim, None, words=net.text_words),
        "0" * 64,
        True,
        torch.device("cpu"),
    )
    seconds = cfg.window_samples / cfg.sample_rate
    frames = np.zeros((0, 16, 16, 3), np.uint8)
    sampling = SamplingSettings(steps=6)
    first = GenerationRequest(frames, "a ball", 3, seconds)
    (previous,) = generate(model, [first], sampling)
    span = Span(0.4 * seconds, 0.6 * seconds)
    again = GenerationRequest(frames, "a ball", 4, seconds, previous=previous.numpy(), spans=(span,))
    neighbour = GenerationRequest(frames, "a door", 5, seconds)
    new, beside = generate(model, [again, neighbour], sampling)
    # the same batch without inpainting: the neighbour is the same to the bit
    (_, plain_beside) = generate(model, [GenerationRequest(frames, "a ball", 4, seconds), neighbour], sampling)
    assert torch.equal(beside, plain_beside)
    (fresh,) = generate(model, [GenerationRequest(frames, "a ball", 4, seconds)], sampling)
    with torch.no_grad():
        mean, _ = net.pretransform.encode_posterior(previous[None])
        kept = net.pretransform.decode(mean)[0, :, : previous.shape[1]]
    rate = cfg.sample_rate
    outside = np.r_[0 : int(0.3 * seconds * rate), int(0.7 * seconds * rate) : previous.shape[1]]
    steered_gap = (new[:, outside] - kept[:, outside]).abs().mean()
    fresh_gap = (fresh[:, outside] - kept[:, outside]).abs().mean()
    assert steered_gap < 0.3 * fresh_gap  # the decoder spreads the span a few latents either way
    out = splice(previous.numpy(), new.numpy(), [span], rate)
    a, b = int(round(span.start_s * rate)), int(round(span.end_s * rate))
    assert np.array_equal(out[:, :a], previous.numpy()[:, :a]) and np.array_equal(out[:, b:], previous.numpy()[:, b:])


def test_a_long_cue_keeps_the_windows_no_span_touches_and_steers_the_rest() -> None:
    from audiox_core.model.conditioners import TextEncoder
    from audiox_core.model.generate import SamplingSettings
    from audiox_core.model.longform import SceneRequest, generate_scenes, plan_windows
    from audiox_core.model.runtime import LoadedModel

    cfg = AudioXConfig.from_dict(tiny_architecture())
    torch.manual_seed(0)
    net = AudioX(cfg).eval()
    text = TextEncoder(cfg.text, cfg.cond_dim, None, words=net.text_words)
    model = LoadedModel("t", "t", cfg, net, text, "0" * 64, True, torch.device("cpu"))
    rate, sampling, frames = cfg.sample_rate, SamplingSettings(steps=4), np.zeros((0, 16, 16, 3), np.uint8)
    (previous,) = generate_scenes(model, [SceneRequest(frames, "a ball", 3, 2.5)], sampling, overlap_s=0.25)
    span = Span(1.6, 1.9)  # in the last two windows, not the first
    again = SceneRequest(frames, "a ball", 9, 2.5, previous.numpy(), (span,))
    (new,) = generate_scenes(model, [again], sampling, overlap_s=0.25)
    windows = plan_windows(previous.shape[1], cfg.video.window_s * rate, int(round(0.25 * rate)))
    untouched = windows[1].start  # window 0 alone up to where window 1 fades in
    assert torch.equal(new[:, :untouched], previous[:, :untouched])
    assert not torch.allclose(new[:, int(1.6 * rate) : int(1.9 * rate)], previous[:, int(1.6 * rate) : int(1.9 * rate)])
    with pytest.raises(InputError, match="shorter than"):
        generate_scenes(model, [SceneRequest(frames, "a ball", 9, 2.5, previous.numpy()[:, :100], (span,))], sampling)


def test_the_edge_measure_hears_a_click_and_not_a_crossfade() -> None:
    from audiox_core.train.evaluation import edge_flux_ratio

    rate = 16000
    rng = np.random.default_rng(0)
    t = np.arange(2 * rate) / rate
    tone = rng.normal(0, 0.05, (2, 2 * rate)).astype(np.float32)  # a bed: it has texture of its own
    other = np.stack([0.5 * np.sin(2 * np.pi * 3000 * t)] * 2).astype(np.float32)
    span = Span(0.8, 1.2)
    hard = tone.copy()
    hard[:, int(0.8 * rate) : int(1.2 * rate)] = other[:, int(0.8 * rate) : int(1.2 * rate)]
    (same,) = edge_flux_ratio(tone, tone, [0.8], rate)
    jump = edge_flux_ratio(hard, tone, [0.8, 1.2], rate)
    faded = edge_flux_ratio(splice(tone, tone * 0.9, [span], rate), tone, [0.8, 1.2], rate)
    assert same < 1.5 and all(j > 4 * same for j in jump) and all(f < 1.5 * same for f in faded)


def _tiny_model(raw: dict, seed: int = 0):
    from audiox_core.model.conditioners import TextEncoder
    from audiox_core.model.runtime import LoadedModel

    cfg = AudioXConfig.from_dict(raw)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = AudioX(cfg).eval()
    text = TextEncoder(cfg.text, cfg.cond_dim, None, words=net.text_words)
    return LoadedModel("t", "t", cfg, net, text, "0" * 64, True, torch.device("cpu"))


def _with_channels(raw: dict, guidance: bool = True) -> dict:
    return {**raw, "studio": {**raw["studio"], "inpaint": {"channels": True, "guidance": guidance}}}


def test_trained_path_at_initialisation_gives_the_model_without_it() -> None:
    """The inpainting channels' projection starts at zero: the same weights otherwise, the same DiT
    output whatever the mask and latents, and the same inpainted and plain generations."""
    from audiox_core.model.generate import GenerationRequest, SamplingSettings, generate

    raw = tiny_architecture()
    base, extended = _tiny_model(raw), _tiny_model(_with_channels(raw))
    missing, unexpected = extended.network.load_state_dict(base.network.state_dict(), strict=False)
    assert missing == ["model.model.inpaint_proj"] and not unexpected
    assert not extended.network.model.model.inpaint_proj.any()
    cfg = base.config
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, cfg.dit.io_channels, cfg.latent_frames, generator=g)
    t, cond = torch.rand(2, generator=g), torch.randn(2, 8, cfg.cond_dim, generator=g)
    known = torch.randn(2, 1 + cfg.dit.io_channels, cfg.latent_frames, generator=g)
    with torch.no_grad():
        assert torch.equal(base.network.model.model(x, t, cond), extended.network.model.model(x, t, cond, known=known))
    seconds, frames = cfg.window_samples / cfg.sample_rate, np.zeros((0, 16, 16, 3), np.uint8)
    sampling = SamplingSettings(steps=4)
    (previous,) = generate(base, [GenerationRequest(frames, "a ball", 3, seconds)], sampling)
    again = GenerationRequest(frames, "a ball", 4, seconds, previous=previous.numpy(), spans=(Span(0.3, 0.6),))
    plain = GenerationRequest(frames, "a door", 5, seconds)
    assert all(
        torch.equal(a, b)
        for a, b in zip(generate(base, [again, plain], sampling), generate(extended, [again, plain], sampling))
    )


def test_trained_path_feeds_the_mask_to_inpainting_requests_only() -> None:
    """With a trained (non-zero) projection and no guidance, an inpainting request's output depends on
    its mask and latents, and its batch neighbour is what it is beside a plain request (nothing known)."""
    from audiox_core.model.generate import GenerationRequest, SamplingSettings, generate

    model = _tiny_model(_with_channels(tiny_architecture(), guidance=False))
    with torch.no_grad():
        model.network.model.model.inpaint_proj.normal_(0, 0.5, generator=torch.Generator().manual_seed(7))
    cfg = model.config
    seconds, frames = cfg.window_samples / cfg.sample_rate, np.zeros((0, 16, 16, 3), np.uint8)
    sampling = SamplingSettings(steps=4)
    (previous,) = generate(model, [GenerationRequest(frames, "a ball", 3, seconds)], sampling)
    again = GenerationRequest(frames, "a ball", 4, seconds, previous=previous.numpy(), spans=(Span(0.3, 0.6),))
    plain = GenerationRequest(frames, "a door", 5, seconds)
    new, beside = generate(model, [again, plain], sampling)
    # the same batch without inpainting (a batch of another size rounds differently)
    unsteered, plain_beside = generate(model, [GenerationRequest(frames, "a ball", 4, seconds), plain], sampling)
    assert torch.equal(beside, plain_beside)
    assert (new - unsteered).abs().mean() > 1e-3


def test_inpaint_channels_learn_and_the_official_config_has_none() -> None:
    from audiox_core.train.objective import v_loss
    from tests.test_sync import OFFICIAL

    if OFFICIAL.is_file():
        official = AudioXConfig.from_json(OFFICIAL)
        assert not official.dit.inpaint_channels and official.inpaint.guidance
    net = _tiny_model(_with_channels(tiny_architecture())).network.train()
    cfg = net.cfg
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(2, cfg.dit.io_channels, cfg.latent_frames, generator=g)
    keep = torch.rand(2, 1, cfg.latent_frames, generator=g) < 0.5
    from audiox_core.model.inpaint import channels_input

    cond = torch.randn(2, 8, cfg.cond_dim, generator=g)
    known = channels_input(x0, keep)
    assert torch.equal(known[:, :1], keep.float()) and torch.equal(known[:, 1:], x0 * keep)
    loss = v_loss(
        net.model.model, x0, cond, torch.rand(2, generator=g), torch.randn(x0.shape, generator=g), known=known
    )
    loss.backward()
    assert net.model.model.inpaint_proj.grad.abs().sum() > 0


def test_a_release_fine_tuned_with_the_channels_starts_as_the_release(tmp_path) -> None:
    """--init with ``add_inpaint`` (and ``add_sync`` beside it): the release's weights as they are,
    so the model training starts from inpaints exactly as the release does."""
    from audiox_core.model.generate import GenerationRequest, SamplingSettings, generate
    from audiox_core.model.runtime import LoadedModel
    from audiox_core.train.loop import _network
    from audiox_core.train.recipe import TrainConfig
    from audiox_core.train.state import save_release

    raw = tiny_architecture()
    original = _tiny_model(raw, seed=4)
    save_release(tmp_path / "release", raw, original.network.state_dict())
    net, cfg, written = _network(
        TrainConfig.from_dict({"model": "demo", "add_inpaint": True}), str(tmp_path / "release")
    )
    assert cfg.dit.inpaint_channels and written["studio"]["inpaint"]["channels"] is True
    extended = LoadedModel("x", "x", cfg, net.eval(), original.text_encoder, "0" * 64, False, torch.device("cpu"))
    seconds, frames = cfg.window_samples / cfg.sample_rate, np.zeros((0, 16, 16, 3), np.uint8)
    (previous,) = generate(original, [GenerationRequest(frames, "a ball", 3, seconds)], SamplingSettings(steps=3))
    again = GenerationRequest(frames, "a ball", 4, seconds, previous=previous.numpy(), spans=(Span(0.3, 0.6),))
    (a,) = generate(original, [again], SamplingSettings(steps=3))
    (b,) = generate(extended, [again], SamplingSettings(steps=3))
    assert torch.equal(a, b)
    with pytest.raises(InputError, match="add_inpaint extends an --init release"):
        _network(TrainConfig.from_dict({"model": "demo", "add_inpaint": True}), None)
    bad = {**raw, "studio": {**raw["studio"], "inpaint": {"channels": False, "guidance": False}}}
    with pytest.raises(Exception, match="nothing would inpaint"):
        AudioXConfig.from_dict(bad)


def test_fine_tuning_a_release_with_the_channels_trains_them(tmp_path) -> None:
    """``add_inpaint`` with --init and the recipe's masks: the channels learn, and the release written
    loads in the pipeline with them (``studio.inpaint.channels``)."""
    from audiox_core.model.runtime import load_model
    from audiox_core.train.loop import train
    from audiox_core.train.state import save_release
    from tests.test_train import _clip, write_recipe

    data = tmp_path / "data"
    data.mkdir()
    for k in range(2):
        _clip(data, f"c{k:03d}", 2.5, k)
    raw = tiny_architecture()
    save_release(tmp_path / "release", raw, _tiny_model(raw, seed=4).network.state_dict())
    recipe = write_recipe(
        tmp_path / "recipe",
        raw,
        stages=["dit"],
        add_inpaint=True,
        dit={"steps": 2, "inpaint_segments_prob": 0.5, "inpaint_causal_prob": 0.5},
    )
    result = train(recipe, data, tmp_path / "out", init=str(tmp_path / "release"), device="cpu")
    model = load_model(str(result.model), device="cpu")
    assert model.config.inpaint.channels and model.network.model.model.inpaint_proj.abs().sum() > 0
