"""Numerics equal to the official AudioX code on the same (synthetic) weights: the parity fixture in
shared/audiox/parity, reproduced in fp32 on the CPU within max|Δ|/max|ref| ≤ 1e-4."""

from __future__ import annotations

import pytest
import torch
from conftest import AUDIOX_FACTS

from audiox_core.model.checkpoint import load_weights
from audiox_core.model.config import AudioXConfig
from audiox_core.model.parity_weights import synthetic_state_dict

PARITY = AUDIOX_FACTS / "parity"
pytestmark = pytest.mark.skipif(
    not (PARITY / "tiny_seed0.safetensors").is_file(), reason=f"parity fixture not found at {PARITY}"
)
TOLERANCE = 1e-4


def rel(ours: torch.Tensor, ref: torch.Tensor) -> float:
    assert ours.shape == ref.shape, f"{ours.shape=} {ref.shape=}"
    return float((ours - ref).abs().max() / ref.abs().max())


@pytest.fixture(scope="module")
def fixture():
    from safetensors.torch import load_file

    return load_file(str(PARITY / "tiny_seed0.safetensors"))


@pytest.fixture(scope="module")
def net():
    cfg = AudioXConfig.from_json(PARITY / "config_tiny.json", clip_vision=PARITY / "clip_vision_tiny.json")
    network = load_weights(cfg, synthetic_state_dict(cfg, seed=0), "synthetic seed 0")
    return network.eval()


@pytest.fixture(scope="module")
def packed_net(net):
    """The same network with the DiT's linears through oneDNN, as load_model runs it on the CPU."""
    import copy

    from audiox_core.model.onednn import available, pack_linears

    if not available():
        pytest.skip("oneDNN's packed linear is not usable with this torch")
    packed = copy.deepcopy(net)
    assert pack_linears(packed.model.model.transformer.layers, 64) > 0
    return packed


@pytest.fixture(autouse=True)
def _fp32_no_grad():
    with torch.no_grad():
        yield


def capture(modules: dict[str, torch.nn.Module]) -> tuple[dict[str, torch.Tensor], list]:
    seen: dict[str, torch.Tensor] = {}

    def hook(name):
        def fn(_module, _inputs, output):
            # a copy: at inference the next block adds to its input in place
            seen[name] = (output.last_hidden_state if hasattr(output, "last_hidden_state") else output).clone()

        return fn

    return seen, [m.register_forward_hook(hook(n)) for n, m in modules.items()]


def test_vae_encode_and_decode_match_the_official_code(net, fixture) -> None:
    vae = net.pretransform
    mean, std = vae.encode_posterior(fixture["vae.in"])
    assert rel(mean, fixture["vae.mean"]) <= TOLERANCE and rel(std, fixture["vae.std"]) <= TOLERANCE
    latent = vae.encode(fixture["vae.in"], noise=fixture["vae.noise"])
    assert torch.equal(latent, fixture["vae.noise"] * std + mean)
    assert rel(latent, fixture["vae.latent"]) <= TOLERANCE
    assert rel(vae.decode(fixture["vae.decode_in"]), fixture["vae.decode_out"]) <= TOLERANCE


@pytest.mark.parametrize("packed", [False, True], ids=["blas", "onednn"])
@pytest.mark.parametrize("cfg_scale", [1, 7])
def test_dit_blocks_and_output_match_the_official_code(net, fixture, cfg_scale: int, packed: bool, request) -> None:
    dit = (request.getfixturevalue("packed_net") if packed else net).model.model
    modules = {
        "to_cond_embed": dit.to_cond_embed,
        "to_timestep_embed": dit.to_timestep_embed,
        "project_in": dit.transformer.project_in,
        "project_out": dit.transformer.project_out,
        **{f"block{i:02d}": b for i, b in enumerate(dit.transformer.layers)},
    }
    seen, hooks = capture(modules)
    try:
        out = dit(fixture["dit.x"], fixture["dit.t"], fixture["dit.cond"], cfg_scale=float(cfg_scale))
    finally:
        for h in hooks:
            h.remove()
    if cfg_scale == 1:
        for name in modules:
            assert rel(seen[name], fixture[f"dit.cfg1.{name}"]) <= TOLERANCE, name
    assert rel(out, fixture[f"dit.out_cfg{cfg_scale}"]) <= TOLERANCE


def test_clip_video_conditioner_matches_the_official_code(net, fixture) -> None:
    video = net.conditioner.conditioners["video_prompt"]
    seen, hooks = capture(
        {"last_hidden_state": video.visual_encoder_model.vision_model, "temp": video.Temp_transformer}
    )
    try:
        video.encode(fixture["clip.video"])  # both items through the tower, as the official code does
    finally:
        for h in hooks:
            h.remove()
    assert rel(seen["last_hidden_state"], fixture["clip.last_hidden_state"]) <= TOLERANCE
    assert rel(seen["temp"], fixture["clip.temp_transformer_out"]) <= TOLERANCE
    out = video(fixture["clip.video"])  # the all-zero item 1 skips the tower
    assert rel(out, fixture["clip.out"]) <= TOLERANCE
    assert torch.equal(out[1], video.empty_visual_feat[0])


def test_audio_prompt_conditioner_matches_the_official_code(net, fixture) -> None:
    audio = net.conditioner.conditioners["audio_prompt"]
    out = audio(fixture["audio.in"], fixture["audio.vae_noise"])
    assert rel(out, fixture["audio.out"]) <= TOLERANCE
    assert torch.equal(out[1], audio.empty_audio_feat[0])


def test_assembled_condition_and_wrapper_match_the_official_code(net, fixture) -> None:
    cond = net.condition(
        fixture["clip.video"], fixture["wrapper.text_cond"], fixture["audio.in"], fixture["audio.vae_noise"]
    )
    assert rel(cond, fixture["wrapper.cross_attn_cond"]) <= TOLERANCE
    exact = torch.cat((fixture["clip.out"], fixture["wrapper.text_cond"], fixture["audio.out"]), dim=1)
    assert torch.equal(fixture["wrapper.cross_attn_cond"], exact)
    out = net.model.model(fixture["dit.x"], fixture["dit.t"], fixture["wrapper.cross_attn_cond"], cfg_scale=7.0)
    assert rel(out, fixture["wrapper.out_cfg7"]) <= TOLERANCE


def test_synthetic_weights_match_the_recipe_hashes() -> None:
    import hashlib
    import json

    if torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"):
        pytest.skip("bit-exact weight hashes need torch's vectorised x86-64 normal sampler (WEIGHTS.md, Portability)")
    cfg = AudioXConfig.from_json(PARITY / "config_tiny.json", clip_vision=PARITY / "clip_vision_tiny.json")
    reference = json.loads((PARITY / "weights_tiny_seed0.sha256.json").read_text())
    combined = hashlib.sha256()
    for key, tensor in synthetic_state_dict(cfg, seed=0).items():
        raw = tensor.contiguous().numpy().tobytes()
        combined.update(key.encode() + b"\0" + raw)
    assert combined.hexdigest() == reference["combined_sha256"]
