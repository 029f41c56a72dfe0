"""Where the model runs and in which precision per part, and the handle of a loaded model."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from audiox_core.errors import InputError
from audiox_core.model.audiox import AudioX
from audiox_core.model.checkpoint import load_weights, read_state_dict, state_dict_sha256
from audiox_core.model.compiled import CompiledForward, compile_dit, compile_wanted
from audiox_core.model.conditioners import TextEncoder
from audiox_core.model.config import AudioXConfig, TextKind
from audiox_core.model.onednn import pack_linears
from audiox_core.model.spec import resolve_model_spec
from audiox_core.store.files import sha256_file

log = logging.getLogger(__name__)

TINY_SEED = 0
DTYPE_NAMES = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


@dataclass(frozen=True)
class DtypePlan:
    """The dtype each part of the model runs in."""

    dit: torch.dtype
    vae: torch.dtype
    cond: torch.dtype  # the video and audio-prompt conditioners
    text: torch.dtype


def resolve_device(device: str | torch.device) -> torch.device:
    """``auto`` is the first CUDA device when there is one, else the CPU; anything else as torch reads it."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def check_device(device: str) -> None:
    """InputError, naming the setting, when ``device`` is a CUDA device this machine does not have:
    found with the other settings, not minutes later when the model is moved there."""
    dev = resolve_device(device)
    if dev.type != "cuda":
        return
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise InputError(
            f"settings: device {device!r}: this machine has no CUDA GPU that torch can use; use cpu or auto"
        )
    if (dev.index or 0) >= count:
        have = ", ".join(f"cuda:{i}" for i in range(count))
        raise InputError(f"settings: device {device!r}: this machine has {count} CUDA GPU(s) ({have})")


def dtype_plan(device: torch.device, text_kind: TextKind) -> DtypePlan:
    """The dtype of each part on ``device``: on CUDA the DiT in bf16 (its timestep path stays fp32), T5 in fp16,
    the VAE and the other conditioners in fp32; on the CPU everything in fp32."""
    if device.type != "cuda":
        return DtypePlan(torch.float32, torch.float32, torch.float32, torch.float32)
    text = torch.float16 if text_kind == "t5" else torch.float32
    return DtypePlan(dit=torch.bfloat16, vae=torch.float32, cond=torch.float32, text=text)


def place(network: AudioX, text_encoder: TextEncoder, device: torch.device, plan: DtypePlan) -> None:
    """Move every part to ``device`` in its planned dtype, ready for inference."""
    network.to(device).eval().requires_grad_(False)
    network.to_inference_dtype(plan.dit)
    network.pretransform.to(plan.vae)
    network.conditioner.to(plan.cond)
    text_encoder.to(device, plan.text)


def precision_label(dtypes: Mapping[str, torch.dtype]) -> str:
    """One name when every part runs in the same dtype (``fp32`` on the CPU), else each part's:
    ``dit=bf16 vae=fp32 cond=fp32 text=fp16`` (at most 41 characters for four parts)."""
    names = {part: DTYPE_NAMES.get(dtype, str(dtype).removeprefix("torch.")) for part, dtype in dtypes.items()}
    if len(set(names.values())) == 1:
        return next(iter(names.values()))
    return " ".join(f"{part}={name}" for part, name in names.items())


def _module_dtype(module: nn.Module) -> torch.dtype:
    dtypes = {p.dtype for p in module.parameters()}
    assert len(dtypes) == 1, f"{type(module).__name__} holds parameters of {dtypes=}"
    return dtypes.pop()


@dataclass(frozen=True)
class LoadedModel:
    """A ready-to-sample model on its device, with what provenance needs to know about it."""

    name: str  # the --model value
    label: str
    config: AudioXConfig
    network: AudioX
    text_encoder: TextEncoder
    checkpoint_sha256: str
    random_weights: bool
    device: torch.device
    compiled: CompiledForward | None = None  # the DiT's pass under torch.compile (CUDA), else eager

    @property
    def part_dtypes(self) -> dict[str, torch.dtype]:
        """The dtype each part holds now: the DiT's compute dtype, then VAE, conditioners, text encoder."""
        return {
            "dit": self.network.dit_dtype,
            "vae": _module_dtype(self.network.pretransform),
            "cond": _module_dtype(self.network.conditioner),
            "text": _module_dtype(self.text_encoder.model),
        }

    @property
    def precision(self) -> str:
        """The precision label of what runs, e.g. ``fp32`` or ``dit=bf16 vae=fp32 cond=fp32 text=fp16``: read
        back from the loaded parts (provenance and generation keys hold it), so it says what runs."""
        return precision_label(self.part_dtypes)


def load_model(value: str, *, device: str | torch.device = "auto", t5_dir: Path | None = None) -> LoadedModel:
    """The model a ``--model`` value names (see ``resolve_model_spec``) on ``device``, weights loaded
    strictly; ``t5_dir`` is the local T5 folder the official text conditioner needs."""
    spec = resolve_model_spec(value)
    dev = resolve_device(device)
    if spec.weights_path is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(TINY_SEED)
            network = AudioX(spec.config)
        sha = state_dict_sha256(network.state_dict())
    else:
        network = load_weights(spec.config, read_state_dict(spec.weights_path), str(spec.weights_path))
        sha = sha256_file(spec.weights_path)
    text = TextEncoder(spec.config.text, spec.config.cond_dim, t5_dir, words=network.text_words)
    plan = dtype_plan(dev, spec.config.text.kind)
    place(network, text, dev, plan)
    if dev.type == "cpu" and plan.dit == torch.float32:
        rows = 2 * (spec.config.latent_frames + 1)  # one request's CFG pass
        log.info("%d DiT linear layers packed for oneDNN", pack_linears(network.model.model.transformer.layers, rows))
    compiled = compile_dit(network.model.model) if compile_wanted(dev) else None
    log.info("model %s loaded on %s (checkpoint sha256 %s)", value, dev, sha[:12])
    return LoadedModel(spec.name, spec.label, spec.config, network, text, sha, spec.random_weights, dev, compiled)
