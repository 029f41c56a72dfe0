"""Building AudioX from a config and loading weights strictly: every missing, unexpected or mis-shaped key is listed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from audiox_core.errors import ModelError
from audiox_core.model.audiox import AudioX
from audiox_core.model.config import AudioXConfig


def build_on_meta(cfg: AudioXConfig) -> AudioX:
    """The network with shapes only (no memory), for manifests and as the target of a strict load."""
    with torch.device("meta"):
        return AudioX(cfg)


def manifest(cfg: AudioXConfig) -> dict[str, list[int]]:
    """``{key: shape}`` of the state dict the config describes, in state-dict order."""
    return {k: list(v.shape) for k, v in build_on_meta(cfg).state_dict().items()}


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of an official ``model.ckpt`` (``{"state_dict": …}``) or a ``.safetensors`` file."""
    if not path.is_file():
        raise ModelError(f"{path}: checkpoint not found")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        blob = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:  # torch raises many types for a foreign or damaged file
        raise ModelError(
            f"{path}: not a readable checkpoint ({type(e).__name__}: {str(e).splitlines()[0][:200]})"
        ) from e
    if not isinstance(blob, dict) or not isinstance(blob.get("state_dict"), dict):
        raise ModelError(f"{path}: no 'state_dict' in the checkpoint (not an AudioX model.ckpt)")
    return blob["state_dict"]


def check_state_dict(expected: dict[str, torch.Size], got: dict[str, torch.Tensor], source: str) -> None:
    """Raise ModelError listing every missing, unexpected and mis-shaped key."""
    missing = [k for k in expected if k not in got]
    unexpected = [k for k in got if k not in expected]
    misshaped = [
        f"{k} {list(got[k].shape)} != {list(s)}" for k, s in expected.items() if k in got and got[k].shape != s
    ]
    if missing or unexpected or misshaped:
        parts = []
        for what, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped)):
            if keys:
                parts.append(f"{len(keys)} {what}: " + ", ".join(keys))
        raise ModelError(f"{source}: weights do not match the model config; " + "; ".join(parts))


def load_weights(cfg: AudioXConfig, state_dict: dict[str, torch.Tensor], source: str) -> AudioX:
    """Build the network and load ``state_dict`` strictly, without a random initialisation first."""
    network = build_on_meta(cfg)
    check_state_dict({k: v.shape for k, v in network.state_dict().items()}, state_dict, source)
    network.load_state_dict({k: v.float() for k, v in state_dict.items()}, strict=True, assign=True)
    _reset_nonpersistent_buffers(network)
    return network


def _reset_nonpersistent_buffers(network: AudioX) -> None:
    # transformers' CLIP keeps ``position_ids`` as a non-saved buffer; after a meta build it has no data.
    for module in network.modules():
        ids = module._buffers.get("position_ids")
        if ids is not None and ids.is_meta:
            module._buffers["position_ids"] = torch.arange(ids.shape[-1]).expand(ids.shape).clone()


def parameter_counts(network: AudioX) -> dict[str, int]:
    """Parameters per part: DiT, VAE, CLIP tower, video temporal/pooling, audio-prompt conditioner."""
    video = network.conditioner.conditioners["video_prompt"]
    clip = sum(p.numel() for p in video.visual_encoder_model.parameters())
    return {
        "dit": sum(p.numel() for p in network.model.parameters()),
        "vae": sum(p.numel() for p in network.pretransform.parameters()),
        "video_clip_tower": clip,
        "video_temporal_and_pooling": sum(p.numel() for p in video.parameters()) - clip,
        "audio_prompt_conditioner": sum(
            p.numel() for p in network.conditioner.conditioners["audio_prompt"].parameters()
        ),
    }


def state_dict_sha256(state_dict: dict[str, torch.Tensor]) -> str:
    """sha256 over each key (UTF-8), a 0x00 byte and the tensor's raw little-endian bytes, in order."""
    h = hashlib.sha256()
    for key, tensor in state_dict.items():
        h.update(key.encode() + b"\0")
        h.update(tensor.detach().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()
