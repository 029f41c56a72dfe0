import numpy as np
import pytest
import torch

from audiox_core.errors import InputError, ModelError
from audiox_core.model.checkpoint import check_state_dict, load_weights
from audiox_core.model.dit import Conditions
from audiox_core.model.generate import GenerationRequest, SamplingSettings, generate

FAST = SamplingSettings(steps=3)


def frames(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (n, 224, 224, 3), dtype=np.uint8)


def test_outputs_are_stereo_and_as_long_as_requested(tiny_model) -> None:
    out = generate(
        tiny_model,
        [GenerationRequest(frames(5), "door slam", 1, 1.0), GenerationRequest(frames(50), "rain", 2, 10.0)],
        FAST,
    )
    assert [tuple(o.shape) for o in out] == [(2, 44_100), (2, 441_000)]
    assert all(torch.isfinite(o).all() for o in out)


def test_same_seed_same_output_other_seed_differs(tiny_model) -> None:
    a = generate(tiny_model, [GenerationRequest(frames(5), "wind", 7, 0.5)], FAST)[0]
    b = generate(tiny_model, [GenerationRequest(frames(5), "wind", 7, 0.5)], FAST)[0]
    c = generate(tiny_model, [GenerationRequest(frames(5), "wind", 8, 0.5)], FAST)[0]
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_batch_equals_single_calls(tiny_model) -> None:
    requests = [GenerationRequest(frames(5, i), f"cue {i}", 10 + i, 0.5) for i in range(3)]
    batched = generate(tiny_model, requests, FAST)
    for request, out in zip(requests, batched):
        single = generate(tiny_model, [request], FAST)[0]
        # fp tolerance: batched and single matmuls round differently (random weights amplify it)
        torch.testing.assert_close(out, single, rtol=0, atol=1e-3 * float(single.abs().max()))


def test_video_and_text_change_the_output(tiny_model) -> None:
    base = generate(tiny_model, [GenerationRequest(frames(5), "wind", 3, 0.5)], FAST)[0]
    other_text = generate(tiny_model, [GenerationRequest(frames(5), "engine", 3, 0.5)], FAST)[0]
    no_video = generate(tiny_model, [GenerationRequest(frames(0), "wind", 3, 0.5)], FAST)[0]
    assert not torch.allclose(base, other_text)
    assert not torch.allclose(base, no_video)


def test_request_longer_than_a_window_is_refused(tiny_model) -> None:
    with pytest.raises(InputError, match="one window"):
        generate(tiny_model, [GenerationRequest(frames(5), "x", 0, 12.0)], FAST)


def test_unknown_sampler_lists_known() -> None:
    with pytest.raises(InputError, match="dpmpp-3m-sde"):
        SamplingSettings(sampler="ddim")


def test_strict_loading_rejects_renamed_and_reshaped_keys(tiny_model) -> None:
    sd = dict(tiny_model.network.state_dict())
    expected = {k: v.shape for k, v in sd.items()}
    renamed = dict(sd)
    renamed["model.model.to_cond_embed.0.weightX"] = renamed.pop("model.model.to_cond_embed.0.weight")
    with pytest.raises(ModelError, match=r"1 missing: model\.model\.to_cond_embed\.0\.weight; 1 unexpected"):
        check_state_dict(expected, renamed, "renamed.ckpt")
    reshaped = dict(sd)
    reshaped["model.model.preprocess_conv.weight"] = torch.zeros(1, 1, 1)
    with pytest.raises(ModelError, match="mis-shaped: model.model.preprocess_conv.weight"):
        check_state_dict(expected, reshaped, "reshaped.ckpt")


def test_load_weights_round_trip(tiny_model) -> None:
    sd = {k: v.clone() for k, v in tiny_model.network.state_dict().items()}
    network = load_weights(tiny_model.config, sd, "memory")
    for k, v in network.state_dict().items():
        assert torch.equal(v, sd[k]), k


def test_cfg_scale_1_equals_the_conditional_branch_of_the_cfg_batch(tiny_model) -> None:
    dit = tiny_model.network.model.model
    g = torch.Generator().manual_seed(0)
    x, t = torch.randn(2, 8, 236, generator=g), torch.rand(2, generator=g)
    config = tiny_model.config
    n_cond = config.video.n_tokens + config.text.max_length + config.audio.n_tokens  # video, text, audio prompt
    cond = torch.randn(2, n_cond, config.cond_dim, generator=g)
    with torch.inference_mode():
        kvs = dit.condition(cond)
        single = dit.guided(x, t, Conditions(kvs), 1.0)
        both = dit.forward_once(torch.cat((x, x)), torch.cat((t, t)), kvs)  # second half unconditional
        unconditional = dit.forward_once(x, t, dit.condition(torch.zeros_like(cond)))
    torch.testing.assert_close(both[:2], single, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(both[2:], unconditional, rtol=1e-5, atol=1e-4)


def test_request_of_zero_seconds_is_refused(tiny_model) -> None:
    with pytest.raises(InputError, match="outside"):
        generate(tiny_model, [GenerationRequest(frames(1), "x", 0, 0.0)], FAST)
