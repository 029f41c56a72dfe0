"""Masked multi-modal training and the inpainting keep-masks: each rate drawn as the recipe says,
exactly nothing at rate 0, and a masked batch differing from the unmasked one only where it masks."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from audiox_core.errors import InputError
from audiox_core.model.audiox import AudioX
from audiox_core.model.conditioners import CLIP_MEAN, TextEncoder
from audiox_core.model.config import AudioXConfig
from audiox_core.train.batches import DitSampler, decode_clips
from audiox_core.train.examples import load_examples
from audiox_core.train.masking import drop_words, inpaint_keep, mask_patches, silence_segments
from audiox_core.train.objective import sample_generator
from audiox_core.train.recipe import DitStage, TrainConfig
from tests.test_train import arch, data  # noqa: F401 - fixtures

DRAWS = 2000


def _g(i: int) -> torch.Generator:
    return sample_generator(0, "dit/mask", 5, i)


def test_patches_are_masked_at_the_rate_on_the_tower_grid() -> None:
    patch, size = 8, 36  # a 4 × 4 grid and 4 pixels past it that the tower never reads
    video = torch.rand(4, 3, size, size, generator=torch.Generator().manual_seed(0)) * 255
    assert torch.equal(mask_patches(_g(0), video, 0.0, patch), video)
    mean = torch.tensor(CLIP_MEAN).view(3, 1, 1) * 255
    shares = []
    for i in range(DRAWS // 10):
        out = mask_patches(_g(i), video, 0.3, patch)
        hidden = (out != video).any(dim=1)  # (F, S, S)
        assert not hidden[:, 32:].any() and not hidden[:, :, 32:].any()
        grid = hidden[:, :32, :32].reshape(4, 4, patch, 4, patch).permute(0, 1, 3, 2, 4).flatten(3)  # (F, 4, 4, p²)
        assert torch.equal(grid.all(dim=-1), grid.any(dim=-1))  # whole patches or none
        assert torch.allclose(out.permute(0, 2, 3, 1)[hidden], mean.flatten().expand(int(hidden.sum()), 3))
        shares.append(float(grid.all(dim=-1).float().mean()))
    assert abs(sum(shares) / len(shares) - 0.3) < 0.02


def test_words_are_dropped_at_the_rate() -> None:
    caption = "a red ball bounces on the wooden floor twice"
    assert drop_words(_g(0), caption, 0.0) == caption
    kept = [len(drop_words(_g(i), caption, 0.25).split()) for i in range(DRAWS)]
    assert abs(1 - sum(kept) / (DRAWS * 9) - 0.25) < 0.02
    assert all(w in caption.split() for w in drop_words(_g(1), caption, 0.5).split())


def test_prompt_segments_are_silenced_at_the_rate() -> None:
    prompt = torch.rand(2, 1000, generator=torch.Generator().manual_seed(0)) + 0.1
    assert torch.equal(silence_segments(_g(0), prompt, 0.0, 64), prompt)
    shares = []
    for i in range(DRAWS // 4):
        out = silence_segments(_g(i), prompt, 0.4, 100)
        silent = (out == 0).all(dim=0).view(10, 100)
        assert torch.equal(silent.all(dim=1), silent.any(dim=1))  # whole segments
        shares.append(float(silent.float().mean()))
    assert abs(sum(shares) / len(shares) - 0.4) < 0.02


def test_inpaint_masks_are_drawn_at_their_probabilities() -> None:
    frames = 40
    assert not any(inpaint_keep(_g(i), frames, segments=0.0, causal=0.0).any() for i in range(200))
    kinds = {"none": 0, "prefix": 0, "segments": 0}
    for i in range(DRAWS):
        keep = inpaint_keep(_g(i), frames, segments=0.3, causal=0.2)
        known = int(keep.sum())
        if known == 0:
            kinds["none"] += 1
        elif torch.equal(keep, torch.arange(frames) < known) and 4 <= known <= 36:
            kinds["prefix"] += 1
        else:
            assert 0 < known < frames
            kinds["segments"] += 1
    # a segment mask whose spans reach the end also reads as a prefix: the causal count is at least its rate
    assert abs(kinds["none"] / DRAWS - 0.5) < 0.03
    assert abs((kinds["prefix"] + kinds["segments"]) / DRAWS - 0.5) < 0.03
    assert kinds["prefix"] / DRAWS > 0.17 and kinds["segments"] / DRAWS > 0.2
    for i in range(200):
        keep = inpaint_keep(_g(i), frames, segments=1.0, causal=0.0)
        assert keep.any() and not keep.all()
    with pytest.raises(InputError, match="exceed 1"):
        TrainConfig.from_dict({"dit": {"inpaint_segments_prob": 0.7, "inpaint_causal_prob": 0.4}})
    with pytest.raises(InputError, match="dit.text_token_mask"):
        TrainConfig.from_dict({"dit": {"text_token_mask": 1.5}})


def test_masked_batches_differ_from_the_plain_ones_only_where_they_mask(data: Path, arch: dict) -> None:  # noqa: F811
    """Each mask draws from its own generators: at rate 0 nothing is masked and nothing else moves;
    at other rates x₀, noise, t, dropout and onsets are the plain batch's, bit for bit."""
    cfg = AudioXConfig.from_dict(arch)
    clips = decode_clips(load_examples(data).examples, cfg)
    latents = [(torch.randn(4, c.audio.shape[1] // 512), torch.ones(4, c.audio.shape[1] // 512)) for c in clips]
    words = AudioX(cfg).text_words
    text = TextEncoder(cfg.text, cfg.cond_dim, None, words=words)
    plain_stage = dataclasses.replace(DitStage(), overlap_s=0.5, continuation_prob=1.0, audio_dropout=0.0)
    masked_stage = dataclasses.replace(
        plain_stage, video_patch_mask=0.5, text_token_mask=0.5, audio_segment_mask=0.5, audio_segment_s=0.05
    )
    plain = DitSampler(cfg, plain_stage, clips, latents, text, seed=0)
    masked = DitSampler(cfg, masked_stage, clips, latents, text, seed=0)
    positions, indices = list(range(8)), [i % len(clips) for i in range(8)]
    changed = {"video": False, "text": False, "prompt": False}
    for step in range(6):
        a, b = plain.batch(step, positions, indices), masked.batch(step, positions, indices)
        assert not a.inpaint_keep.any()
        for f in ("x0", "noise", "t", "keep", "video_present", "frames_offset", "onsets", "prompt_noise"):
            assert torch.equal(getattr(a, f), getattr(b, f)), f
        for f in changed:
            changed[f] |= not torch.equal(getattr(a, f), getattr(b, f))
        absent = ~a.video_present
        assert torch.equal(a.video[absent], b.video[absent])  # a dropped picture stays all zero
    assert all(changed.values()), changed
