"""The training loop behind ``audiox-studio train``: the VAE stage, then the DiT stage on its latents."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from audiox_core.environment import t5_dir
from audiox_core.errors import InputError, ModelError
from audiox_core.model.audiox import AudioX
from audiox_core.model.autoencoder import Pretransform, WNConv1d, WNConvTranspose1d
from audiox_core.model.checkpoint import load_weights, read_state_dict, state_dict_sha256
from audiox_core.model.conditioners import TextEncoder
from audiox_core.model.config import AudioXConfig
from audiox_core.model.inpaint import channels_input
from audiox_core.model.runtime import resolve_device
from audiox_core.model.spec import resolve_model_spec
from audiox_core.train.batches import (
    Clip,
    DitBatch,
    DitSampler,
    decode_clips,
    encode_latents,
    fingerprint,
    latent_spread,
    vae_crops,
)
from audiox_core.train.card import model_card
from audiox_core.train.discriminator import MultiResolutionDiscriminator, discriminator_loss, generator_losses
from audiox_core.train.ema import EMA
from audiox_core.train.evaluation import Ceiling, sharp_sounds, vae_round_trip
from audiox_core.train.examples import load_examples
from audiox_core.train.lora import add_lora, merge_lora
from audiox_core.train.objective import onset_loss as sync_onset_loss
from audiox_core.train.objective import step_generator, v_loss
from audiox_core.train.plot import draw_losses
from audiox_core.train.recipe import TrainConfig, VaeStage
from audiox_core.train.spectral import band_loss, multi_resolution_stft_loss, onset_loss
from audiox_core.train.state import load_checkpoint, restore_rng_states, rng_states, save_checkpoint, save_release

log = logging.getLogger(__name__)

TrainProgress = Callable[[str, int, int, float, float], None]  # stage, step, total, loss, steps per second


@dataclass
class StageLog:
    stage: str
    steps: int
    losses: list[float] = field(default_factory=list)
    wall_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        tail = self.losses[-100:]
        return {
            "steps": self.steps,
            "done": len(self.losses),
            "final_loss": self.losses[-1] if self.losses else None,
            "mean_last_100": sum(tail) / len(tail) if tail else None,
            "wall_s": round(self.wall_s, 1),
            "steps_per_s": round(len(self.losses) / self.wall_s, 4) if self.wall_s else None,
            "losses": self.losses,
        }


@dataclass(frozen=True)
class TrainResult:
    out: Path
    model: Path | None  # None when the run stopped before its last step
    metrics: Path
    loss_png: Path
    stages: dict[str, StageLog]


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def share(self, batch: int) -> list[int]:
        """This rank's positions in a global batch (rank, rank + W, …): N processes compute what one does."""
        return list(range(self.rank, batch, self.size))

    def mean(self, value: float) -> float:
        """The mean over ranks (every rank holds the same count of samples)."""
        if self.size == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64)
        dist.all_reduce(t)
        return float(t) / self.size

    def barrier(self) -> None:
        if self.size > 1:
            dist.barrier()


def _world(device: torch.device) -> World:
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return World(dist.get_rank(), dist.get_world_size())


class VaeObjective(nn.Module):
    """Reconstruction (multi-resolution STFT, L1, the onset measure's spectrogram), a KL term, and
    with a discriminator the adversarial and feature-matching terms; keeps the last batch's real and
    reconstructed audio for the discriminator's own step."""

    def __init__(self, net: AudioX, stage: VaeStage, rate: int, discriminator: nn.Module | None = None) -> None:
        super().__init__()
        self.vae = net.pretransform
        self.stage, self.rate = stage, rate
        self.discriminator = discriminator
        self.adversarial = False  # switched on from ``stage.adversarial_from``
        self.last: tuple[torch.Tensor, torch.Tensor] | None = None

    def forward(self, audio: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        s = self.stage
        mean, std = self.vae.encode_posterior(audio)  # (B, latent, N)
        recon = self.vae.decode(mean + std * noise)  # (B, 2, L)
        var = std**2
        kl = 0.5 * (mean**2 + var - torch.log(var) - 1).mean()
        l1 = (recon - audio).abs().mean()
        # Per sample, then the mean over the batch: spectral convergence is a ratio of norms, and a
        # batch-wide ratio would make N processes with their shares differ from one with the whole
        # batch. A silent crop (below −80 dBFS RMS) has no spectrum to converge to; only L1 trains it.
        audible = audio.pow(2).mean(dim=(1, 2)) > 1e-8  # (B,)
        stft = sum(
            (multi_resolution_stft_loss(r[None], a[None]) for r, a, keep in zip(recon, audio, audible) if keep),
            audio.new_zeros(()),
        ) / len(audio)
        loss = stft + s.l1_weight * l1 + s.kl_weight * kl
        if s.onset_weight > 0:
            loss = loss + s.onset_weight * onset_loss(recon, audio, self.rate)
        if s.band_weight > 0:
            loss = loss + s.band_weight * band_loss(recon, audio)
        if self.discriminator is not None and self.adversarial:
            self.discriminator.requires_grad_(False)
            adversarial, matching = generator_losses(self.discriminator(audio), self.discriminator(recon))
            self.discriminator.requires_grad_(True)
            loss = loss + s.adversarial_weight * adversarial + s.feature_weight * matching
        self.last = (audio.detach(), recon.detach())
        return loss


# Measured on the demo VAE: our filters start at norm 1, which grows the activations through the residual
# stacks and the snakes' offsets (0.7 → 40 through the encoder); PyTorch's default 1/√3 makes the decoder's
# vanish (0.55 → 0.004); at 0.75 they stay within 0.3–1.3 on audio.
FRESH_FILTER_NORM = 0.75


@torch.no_grad()
def calibrate_fresh_vae(vae: Pretransform, audio: torch.Tensor) -> None:
    """A fresh autoencoder made ready to learn: filters at norm ``FRESH_FILTER_NORM``, then on this batch the
    encoder's means to unit spread, its posterior std to about softplus(−3) ≈ 0.05 (a fresh one's would drown
    the means in sampling noise) and the decoder's output to ``audio``'s RMS."""
    for module in vae.modules():
        if isinstance(module, WNConv1d | WNConvTranspose1d):
            module.weight_g.copy_(_weight_norms(module.weight_v) * FRESH_FILTER_NORM)
    last_enc = vae.model.encoder.layers[-1]
    latent = vae.cfg.latent_dim
    raw = vae.model.encoder(audio)  # (B, 2·latent, N)
    means, scales = raw[:, :latent], raw[:, latent:]
    spread = means.std().clamp_min(1e-6)
    last_enc.weight_g[:latent] /= spread
    last_enc.bias[:latent] /= spread
    k = scales.std().clamp_min(1e-6)
    linear = scales.mean(dim=(0, 2)) - last_enc.bias[latent:]  # each channel's mean before its bias
    last_enc.weight_g[latent:] /= k
    last_enc.bias[latent:] = -3.0 - linear / k
    mean, _ = vae.encode_posterior(audio)
    recon = vae.decode(mean)
    last_dec = next(m for m in reversed(vae.model.decoder.layers) if isinstance(m, WNConv1d))
    last_dec.weight_g *= audio.pow(2).mean().sqrt() / recon.pow(2).mean().sqrt().clamp_min(1e-6)


def _weight_norms(v: torch.Tensor) -> torch.Tensor:
    """‖v‖ over all dimensions but the first, shaped like ``weight_g``."""
    return v.flatten(1).norm(dim=1).view(-1, *([1] * (v.dim() - 1)))


class DiscriminatorStep:
    """The discriminator's own optimiser step after each autoencoder step (from ``adversarial_from``)."""

    def __init__(self, objective: VaeObjective, stage: VaeStage) -> None:
        assert objective.discriminator is not None
        self.objective, self.stage = objective, stage
        self.optimiser = torch.optim.AdamW(
            objective.discriminator.parameters(), lr=stage.discriminator_lr, betas=stage.betas
        )

    def before(self, step: int) -> None:
        self.objective.adversarial = step >= self.stage.adversarial_from

    def after(self, step: int) -> None:
        if not self.objective.adversarial or self.objective.last is None:
            return
        real, fake = self.objective.last
        d = self.objective.discriminator
        loss = discriminator_loss(d(real), d(fake))
        self.optimiser.zero_grad(set_to_none=True)
        loss.backward()
        self.optimiser.step()

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.objective.discriminator.state_dict(), "optimizer": self.optimiser.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.objective.discriminator.load_state_dict(state["model"])
        self.optimiser.load_state_dict(state["optimizer"])


class DitObjective(nn.Module):
    """The v loss; with time-aligned video features, plus ``onset_weight`` × their onset head's loss
    (a task of their own from the first step, while the DiT's zero projection learns to read them)."""

    def __init__(self, net: AudioX, onset_weight: float = 0.0) -> None:
        super().__init__()
        self.net = net
        self.onset_weight = onset_weight

    def forward(self, b: DitBatch) -> torch.Tensor:
        cond = self.net.condition(b.video, b.text, b.prompt, b.prompt_noise, b.video_present)  # (B, S, cond_dim)
        cond = cond * b.keep[:, None, None]
        sync = self.net.sync_features(b.video, b.video_present, b.frames_offset)
        pooled = self.net.pooled_text(b.text)
        if pooled is not None:
            pooled = pooled * b.keep[:, None]
        # what an inpainting DiT knows is not a condition CFG drops: generate() gives it to both halves
        known = channels_input(b.x0, b.inpaint_keep) if self.net.cfg.dit.inpaint_channels else None
        dit = self.net.model.model
        if sync is None:
            return v_loss(dit, b.x0, cond, b.t, b.noise, pooled=pooled, known=known)
        loss = v_loss(dit, b.x0, cond, b.t, b.noise, sync * b.keep[:, None, None], pooled, known)
        if self.onset_weight > 0:
            logits = self.net.conditioner.conditioners["video_sync"].onset_logits(sync)
            loss = loss + self.onset_weight * sync_onset_loss(logits, b.onsets, b.video_present)
        return loss


def _trainable_dit(net: AudioX, lora_rank: int, lora_alpha: float) -> list[tuple[str, nn.Parameter]]:
    """Set which parameters learn in the DiT stage and return them by name."""
    net.requires_grad_(False)
    if lora_rank > 0:
        add_lora(net.model.model, lora_rank, lora_alpha)
        if net.cfg.sync.dim:  # a branch added to the release learns whole: it has nothing to adapt from
            net.model.model.sync_proj.requires_grad_(True)
            net.conditioner.conditioners["video_sync"].requires_grad_(True)
        if net.cfg.dit.inpaint_channels:
            net.model.model.inpaint_proj.requires_grad_(True)
    else:
        net.model.requires_grad_(True)
        if not net.cfg.dit.global_text:  # unused by AudioX (no global condition)
            net.model.model.to_global_embed.requires_grad_(False)
        video = net.conditioner.conditioners["video_prompt"]
        video.requires_grad_(True)
        video.visual_encoder_model.visual_projection.requires_grad_(False)  # AudioX reads last_hidden_state
        video.visual_encoder_model.vision_model.post_layernorm.requires_grad_(False)
        for own in ("text_prompt", "video_sync"):  # ours, where the config has them
            if own in net.conditioner.conditioners:
                net.conditioner.conditioners[own].requires_grad_(True)
        audio = net.conditioner.conditioners["audio_prompt"]
        audio.empty_audio_feat.requires_grad_(True)
        audio.proj_out.requires_grad_(True)
    return [(n, p) for n, p in net.named_parameters() if p.requires_grad]


def _lr_lambda(warmup: int) -> Callable[[int], float]:
    return lambda step: min(1.0, (step + 1) / max(1, warmup))


def _run_stage(
    name: str,
    *,
    objective: nn.Module,
    params: list[tuple[str, nn.Parameter]],
    loss_of: Callable[[nn.Module, int, list[int]], torch.Tensor],
    steps: int,
    batch_size: int,
    lr: float,
    betas: tuple[float, float],
    weight_decay: float,
    warmup: int,
    grad_clip: float,
    ema_decay: float,
    checkpoint_every: int,
    net: AudioX,
    out: Path,
    recipe: TrainConfig,
    data_fp: str,
    state: dict[str, Any] | None,
    world: World,
    device: torch.device,
    progress: TrainProgress | None,
    stop_at: int | None,
    side: DiscriminatorStep | None = None,
) -> tuple[StageLog, EMA, bool]:
    """Steps ``start … steps − 1`` of one stage; returns its log, the EMA and whether it finished.
    ``side``: a second network's step around each step (the autoencoder's discriminator), checkpointed too."""
    if batch_size % world.size:
        raise InputError(f"{recipe.source}: {name}.batch_size {batch_size} is not a multiple of {world.size} processes")
    trained = [p for _, p in params]
    wrapped = (
        nn.parallel.DistributedDataParallel(objective, find_unused_parameters=True) if world.size > 1 else objective
    )
    optimiser = torch.optim.AdamW(trained, lr=lr, betas=betas, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, _lr_lambda(warmup))
    ema = EMA(params, ema_decay)
    log_ = StageLog(name, steps)
    ckpt = out / name / "checkpoint.pt"
    start = 0
    if state is not None:  # the model weights are in already (the caller needs them before this)
        optimiser.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        ema.load_state_dict(state["ema"])
        restore_rng_states(state["rng"])
        start, log_.losses, log_.wall_s = state["step"], state["losses"], state["wall_s"]
        if side is not None:
            side.load_state_dict(state["side"])

    def checkpoint(step: int) -> None:
        if world.main:
            save_checkpoint(
                ckpt,
                {
                    "stage": name,
                    "step": step,
                    "model": net.state_dict(),
                    "optimizer": optimiser.state_dict(),
                    "schedule": schedule.state_dict(),
                    "ema": ema.state_dict(),
                    "rng": rng_states(),
                    "losses": log_.losses,
                    "wall_s": log_.wall_s,
                    "recipe": recipe.to_dict(),
                    "data": data_fp,
                    **({"side": side.state_dict()} if side is not None else {}),
                },
            )
        world.barrier()

    objective.train()
    began = time.perf_counter() - log_.wall_s
    session = time.perf_counter()
    mine = world.share(batch_size)
    try:
        for step in range(start, steps):
            if side is not None:
                side.before(step)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
                loss = loss_of(wrapped, step, mine)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip > 0:
                nn.utils.clip_grad_norm_(trained, grad_clip)
            optimiser.step()
            schedule.step()
            ema.update()
            if side is not None:
                side.after(step)
            log_.losses.append(world.mean(float(loss.detach())))
            log_.wall_s = time.perf_counter() - began
            if progress and world.main:
                progress(name, step + 1, steps, log_.losses[-1], (step + 1 - start) / (time.perf_counter() - session))
            if (step + 1) % checkpoint_every == 0 or step + 1 == steps:
                checkpoint(step + 1)
            if stop_at is not None and step + 1 >= stop_at and step + 1 < steps:
                checkpoint(step + 1)
                return log_, ema, False
    except KeyboardInterrupt:
        checkpoint(len(log_.losses))  # Ctrl-C keeps the work: --resume continues from here
        raise
    return log_, ema, True


def _resume_state(ckpt: Path, recipe: TrainConfig, stage: str) -> dict[str, Any]:
    """The checkpoint of ``stage`` to continue from, read before the data is; one line when it is not
    a checkpoint of ours or was made by another recipe. Only what decides that stage's weights is
    compared (``TrainConfig.stage_view``): a finished VAE stage carries on into a changed DiT section."""
    state = load_checkpoint(ckpt)
    stored = TrainConfig.from_dict(state["recipe"], str(ckpt)).to_dict()  # fields added since: their defaults
    if TrainConfig.stage_view(stored, stage) != TrainConfig.stage_view(recipe.to_dict(), stage):
        raise InputError(f"{ckpt}: --resume with a different recipe than the checkpoint's; use a new --out")
    return state


def _check_data(ckpt: Path, state: dict[str, Any], data_fp: str) -> None:
    if state["data"] != data_fp:
        raise InputError(f"{ckpt}: --resume with other training data than the checkpoint's; use a new --out")


def _network(recipe: TrainConfig, init: str | None) -> tuple[AudioX, AudioXConfig, dict[str, Any]]:
    """A fresh network of the recipe's architecture (seeded), or the release ``init`` loaded strictly
    by the pipeline's own loader (its ModelError lines pass through)."""
    if init is not None:
        spec = resolve_model_spec(init)
        if spec.weights_path is None:
            raise ModelError(f"{init}: --init needs trained weights (an AudioX release folder or demo)")
        state = read_state_dict(spec.weights_path)
        net = load_weights(spec.config, state, str(spec.weights_path))  # strictly: a foreign file is one line
        raw = json.loads(spec.config_path.read_text())
        if recipe.add_sync or recipe.add_inpaint:
            return _extended(net, raw, recipe)
        return net, spec.config, raw
    if recipe.add_inpaint:
        raise InputError(
            f"{recipe.source}: add_inpaint extends an --init release; a fresh model takes studio.inpaint in its config"
        )
    cfg, raw = recipe.architecture()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.seed)
        net = AudioX(cfg)
    return net, cfg, raw


def _extended(net: AudioX, raw: dict[str, Any], recipe: TrainConfig) -> tuple[AudioX, AudioXConfig, dict[str, Any]]:
    """The release ``net`` with the recipe's ``add_sync`` branch and ``add_inpaint`` channels: every
    release weight as loaded, the new parts made by the recipe's seed and their projections zero (so
    the outputs are the release's)."""
    studio = dict(raw.get("studio", {}))
    if recipe.add_sync:
        studio["sync"] = dict(recipe.add_sync)
    if recipe.add_inpaint:
        studio["inpaint"] = {**studio.get("inpaint", {}), "channels": True}
    raw = {**raw, "studio": studio}
    cfg = AudioXConfig.from_dict(raw)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.seed)
        extended = AudioX(cfg)
    missing, unexpected = extended.load_state_dict(net.state_dict(), strict=False)
    assert not unexpected and all("sync" in k or k.endswith("inpaint_proj") for k in missing), (
        f"{missing=} {unexpected=}"
    )
    return extended, cfg, raw


def _machine() -> dict[str, Any]:
    """CPU model, cores, torch version and GPU name, for the metrics and the model card."""
    cpu = platform.processor() or ""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next(ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    return {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "cuda": gpu}


@dataclass(frozen=True)
class _Run:
    """What every stage of one ``train`` call shares."""

    net: AudioX
    cfg: AudioXConfig
    recipe: TrainConfig
    clips: list[Clip]
    data: Path
    raw: dict[str, Any]  # the architecture's config.json, written beside the weights (the DiT stage sets its scale)
    out: Path
    data_fp: str
    world: World
    device: torch.device
    progress: TrainProgress | None
    stop_at: int | None


def train(
    recipe: TrainConfig,
    data: Path,
    out: Path,
    *,
    init: str | None = None,
    resume: bool = False,
    device: str = "auto",
    progress: TrainProgress | None = None,
    stop_at: int | None = None,
) -> TrainResult:
    """Train the recipe's stages on the "train" split of ``data`` into ``out`` (``<stage>/checkpoint.pt``,
    ``model/`` with the EMA weights, ``metrics.json``, ``loss.png``). ``stop_at`` ends the session after that
    many steps of a stage with a checkpoint, as an interruption would (``resume`` continues it)."""
    dev = resolve_device(device)
    has_checkpoint = any((out / s / "checkpoint.pt").is_file() for s in recipe.stages)
    if has_checkpoint and not resume:
        raise InputError(f"{out}: holds a training run already; add --resume to continue it, or give another --out")
    if resume and not has_checkpoint:
        raise InputError(f"{out}: no checkpoint to resume from (run without --resume first)")
    deterministic = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(dev.type == "cpu", warn_only=True)
    try:
        return _train(recipe, data, out, init=init, resume=resume, dev=dev, progress=progress, stop_at=stop_at)
    finally:
        torch.use_deterministic_algorithms(deterministic[0], warn_only=deterministic[1])


def _train(
    recipe: TrainConfig,
    data: Path,
    out: Path,
    *,
    init: str | None,
    resume: bool,
    dev: torch.device,
    progress: TrainProgress | None,
    stop_at: int | None,
) -> TrainResult:
    world = _world(dev)
    started = time.perf_counter()
    stages = [s for s in recipe.stages if not (init is not None and s == "vae")]  # an init's VAE stays as it is
    # Resuming: stages before the last one with a checkpoint are done (their weights are in it).
    last = max((i for i, s in enumerate(stages) if (out / s / "checkpoint.pt").is_file()), default=0)
    if not stages:
        raise InputError(f"{recipe.source}: stages {list(recipe.stages)} with --init train nothing (its VAE stays)")
    if init is None:
        recipe.architecture()  # a model that is neither a preset nor a config.json: one line before the data
    elif recipe.dit.scale_latents:
        raise InputError(
            f"{recipe.source}: dit.scale_latents rescales this run's own VAE; with --init the release keeps its scale"
        )
    ckpt = out / stages[last] / "checkpoint.pt"
    resumed = _resume_state(ckpt, recipe, stages[last]) if resume else None
    examples = load_examples(data, split="train")
    for s in examples.skipped:
        log.warning("skipped %s: %s", s.id, s.reason)
    data_fp = fingerprint(examples.examples)
    if resumed is not None:
        _check_data(ckpt, resumed, data_fp)
    net, cfg, raw = _network(recipe, init)
    net.to(dev)
    clips = decode_clips(examples.examples, cfg)
    run = _Run(net, cfg, recipe, clips, data, raw, out, data_fp, world, dev, progress, stop_at)
    logs: dict[str, StageLog] = {}
    finished = True
    for i, name in enumerate(stages):
        if resume and i < last:
            continue
        log_, ema, finished = (_vae if name == "vae" else _dit)(run, resumed if resume and i == last else None)
        logs[name] = log_
        if not finished:
            break
        ema.copy_to(net)
        if name == "vae":  # the audio prompt is encoded by a frozen copy of the same autoencoder
            net.conditioner.conditioners["audio_prompt"].pretransform.load_state_dict(net.pretransform.state_dict())
    merge_lora(net)
    metrics, png = out / "metrics.json", out / "loss.png"
    model_dir = out / "model" if finished else None
    if world.main:
        wall_s = time.perf_counter() - started
        summary = _summary(recipe, init, data, data_fp, examples, str(dev), world.size, wall_s, logs)
        if (out / "vae" / "ceiling.json").is_file():
            summary["vae_ceiling"] = json.loads((out / "vae" / "ceiling.json").read_text())
        summary["text"] = {
            "kind": cfg.text.kind,
            "vocabulary": list(cfg.text.vocabulary),
            "prompts": {"foley": cfg.prompts.foley, "music": cfg.prompts.music},
        }
        out.mkdir(parents=True, exist_ok=True)
        metrics.write_text(json.dumps(summary, indent=1) + "\n")
        draw_losses({k: v.losses for k, v in logs.items()}, png)
        if model_dir is not None:
            save_release(model_dir, raw, net.state_dict(), model_card(summary, data))
    world.barrier()
    return TrainResult(out, model_dir, metrics, png, logs)


def _summary(
    recipe: TrainConfig,
    init: str | None,
    data: Path,
    data_fp: str,
    examples: Any,
    device: str,
    processes: int,
    wall_s: float,
    logs: dict[str, StageLog],
) -> dict[str, Any]:
    """metrics.json's content (and the model card's facts) for a run's stages."""
    return {
        "recipe": recipe.to_dict(),
        "seed": recipe.seed,
        "init": init,
        "data": {
            "folder": str(data),
            "fingerprint": data_fp,
            "examples": len(examples.examples),
            "skipped": [{"id": s.id, "reason": s.reason} for s in examples.skipped],
        },
        "device": device,
        "processes": processes,
        "machine": _machine(),
        "wall_s": round(wall_s, 1),
        "stages": {k: v.summary() for k, v in logs.items()},
    }


def release(recipe: TrainConfig, data: Path, out: Path, *, init: str | None = None) -> TrainResult:
    """``OUT/model`` from a run stopped before its last step (Ctrl-C, a time limit): the EMA weights of
    its DiT checkpoint, with metrics, loss curve and a card that says at which step it stopped. A
    run of the same recipe with ``dit.steps`` set to that step gives the same weights (the learning
    rate is constant after warm-up and every draw is keyed by the step)."""
    ckpt = out / "dit" / "checkpoint.pt"
    if "dit" not in recipe.stages or not ckpt.is_file():
        raise InputError(f"{out}: no DiT checkpoint to release (the DiT stage has not started)")
    state = _resume_state(ckpt, recipe, "dit")
    examples = load_examples(data, split="train")
    data_fp = fingerprint(examples.examples)
    _check_data(ckpt, state, data_fp)
    net, _, raw = _network(recipe, init)
    if (out / "dit" / "latent_scale.json").is_file():  # the scale the DiT stage learned at
        raw["model"]["pretransform"]["scale"] = json.loads((out / "dit" / "latent_scale.json").read_text())["scale"]
    params = _trainable_dit(net, recipe.dit.lora_rank, recipe.dit.lora_alpha)  # LoRA modules before the weights
    net.load_state_dict(state["model"])
    ema = EMA(params, recipe.dit.ema_decay)
    ema.load_state_dict(state["ema"])
    ema.copy_to(net)
    merge_lora(net)
    logs = {}
    for name in recipe.stages:
        stage = load_checkpoint(out / name / "checkpoint.pt") if (out / name / "checkpoint.pt").is_file() else None
        if stage is not None:
            steps = getattr(recipe, name).steps
            logs[name] = StageLog(name, steps, list(stage["losses"][: stage["step"]]), float(stage["wall_s"]))
    wall_s = sum(v.wall_s for v in logs.values())
    summary = _summary(recipe, init, data, data_fp, examples, "cpu", 1, wall_s, logs)
    summary["released_at"] = {"stage": "dit", "step": int(state["step"]), "of": recipe.dit.steps}
    metrics, png, model_dir = out / "metrics.json", out / "loss.png", out / "model"
    metrics.write_text(json.dumps(summary, indent=1) + "\n")
    draw_losses({k: v.losses for k, v in logs.items()}, png)
    save_release(model_dir, raw, net.state_dict(), model_card(summary, data))
    return TrainResult(out, model_dir, metrics, png, logs)


def _stage_args(run: _Run, state: dict[str, Any] | None) -> dict[str, Any]:
    return dict(
        net=run.net, out=run.out, recipe=run.recipe, data_fp=run.data_fp, state=state, world=run.world,
        device=run.device, progress=run.progress, stop_at=run.stop_at,
    )  # fmt: skip


def _vae(run: _Run, state: dict[str, Any] | None) -> tuple[StageLog, EMA, bool]:
    """The autoencoder on random crops of the clips' audio (some placed on the sounds' onsets)."""
    s, net, cfg, dev = run.recipe.vae, run.net, run.cfg, run.device
    net.requires_grad_(False)
    net.pretransform.requires_grad_(True)
    if state is not None:  # the stage trains the autoencoder only: the rest stays as the fresh network made it
        vae_keys = {k[len("pretransform.") :]: v for k, v in state["model"].items() if k.startswith("pretransform.")}
        net.pretransform.load_state_dict(vae_keys)
    discriminator = None
    if s.adversarial_weight > 0 or s.feature_weight > 0:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(run.recipe.seed + 1)
            discriminator = MultiResolutionDiscriminator().to(dev)
    objective = VaeObjective(net, s, cfg.sample_rate, discriminator)
    side = DiscriminatorStep(objective, s) if discriminator is not None else None
    hop = cfg.autoencoder.hop
    crop = max(hop, int(round(s.crop_s * cfg.sample_rate / hop)) * hop)
    onsets = [list(c.onsets) for c in run.clips] if s.onset_crop_prob > 0 else None
    if state is None and s.calibrate_init:
        first = vae_crops(
            run.clips, run.recipe.seed, -1, list(range(s.batch_size)), list(range(s.batch_size)), crop, cfg
        )
        calibrate_fresh_vae(net.pretransform, first[0].to(dev))

    def loss_of(module: nn.Module, step: int, positions: list[int]) -> torch.Tensor:
        g = step_generator(run.recipe.seed, "vae", step)
        indices = torch.randint(0, len(run.clips), (s.batch_size,), generator=g).tolist()
        audio, noise = vae_crops(
            run.clips, run.recipe.seed, step, positions, [indices[p] for p in positions], crop, cfg,
            onsets=onsets, onset_prob=s.onset_crop_prob,
        )  # fmt: skip
        return module(audio.to(dev), noise.to(dev))

    params = [(f"pretransform.{n}", p) for n, p in net.pretransform.named_parameters()]
    return _run_stage(
        "vae", objective=objective, params=params, loss_of=loss_of, steps=s.steps, batch_size=s.batch_size,
        lr=s.lr, betas=s.betas, weight_decay=0.0, warmup=0, grad_clip=s.grad_clip, ema_decay=s.ema_decay,
        checkpoint_every=s.checkpoint_every, side=side, **_stage_args(run, state),
    )  # fmt: skip


def _dit(run: _Run, state: dict[str, Any] | None) -> tuple[StageLog, EMA, bool]:
    """The DiT and conditioners on the frozen VAE's cached latents."""
    s, net, cfg, dev = run.recipe.dit, run.net, run.cfg, run.device
    if (s.inpaint_segments_prob or s.inpaint_causal_prob) and not cfg.dit.inpaint_channels:
        raise InputError(
            f"{run.recipe.source}: dit.inpaint_* masks need a model with inpainting channels "
            "(add_inpaint with --init, or studio.inpaint.channels in its config)"
        )
    params = _trainable_dit(net, s.lora_rank, s.lora_alpha)
    if state is not None:  # before the latents: a resumed DiT stage's VAE is the checkpoint's
        net.load_state_dict(state["model"])
    net.eval()
    if state is None and "vae" in run.recipe.stages and run.world.main:
        check_vae_ceiling(net, run.data, cfg.sample_rate, run.out / "vae" / "ceiling.json")
    cache = run.out / "cache" / f"latents-{run.data_fp[:16]}-{_vae_fp(net)}.safetensors"
    latents = encode_latents(net, run.clips, cache, dev)
    if s.scale_latents:  # recomputed on a resume from the same cached latents: the same number
        cfg = dataclasses.replace(cfg, latent_scale=latent_spread(latents))
        net.cfg = cfg
        run.raw["model"]["pretransform"]["scale"] = cfg.latent_scale
        (run.out / "dit").mkdir(parents=True, exist_ok=True)
        (run.out / "dit" / "latent_scale.json").write_text(json.dumps({"scale": cfg.latent_scale}) + "\n")
        log.info("latent scale %.4f: the DiT learns the VAE's latents divided by it", cfg.latent_scale)
    text = TextEncoder(cfg.text, cfg.cond_dim, t5_dir(), words=net.text_words)
    if not text.trainable:
        text.to(torch.device("cpu"), torch.float32)
    sampler = DitSampler(cfg, s, run.clips, latents, text, run.recipe.seed)
    net.model.model.transformer.gradient_checkpointing = s.grad_checkpointing
    objective = DitObjective(net, s.onset_weight)

    def loss_of(module: nn.Module, step: int, positions: list[int]) -> torch.Tensor:
        g = step_generator(run.recipe.seed, "dit", step)
        indices = torch.randint(0, len(run.clips), (s.batch_size,), generator=g).tolist()
        b = sampler.batch(step, positions, [indices[p] for p in positions])
        return module(DitBatch(*(getattr(b, f).to(dev) for f in DitBatch.__dataclass_fields__)))

    try:
        return _run_stage(
            "dit", objective=objective, params=params, loss_of=loss_of, steps=s.steps, batch_size=s.batch_size,
            lr=s.lr, betas=s.betas, weight_decay=s.weight_decay, warmup=s.warmup_steps, grad_clip=s.grad_clip,
            ema_decay=s.ema_decay, checkpoint_every=s.checkpoint_every, **_stage_args(run, state),
        )  # fmt: skip
    finally:
        net.model.model.transformer.gradient_checkpointing = False


def check_vae_ceiling(net: AudioX, data: Path, rate: int, report: Path) -> Ceiling | None:
    """The trained autoencoder's round trip on the data's held-out clips with sharp events (what the
    DiT can reach at most), logged and written to ``report``; a warning names each missed target
    before the DiT stage spends its time. None when the data holds no such clips."""
    held = [e for e in load_examples(data).examples if e.split == "heldout"]
    sounds = sharp_sounds(held, rate)
    if not sounds:
        log.info("no held-out clips with sharp events: the autoencoder's ceiling is not measured")
        return None
    ceiling = vae_round_trip(net.pretransform, sounds, rate)
    log.info("%s", ceiling.line())
    if ceiling.short_of:
        log.warning("the autoencoder caps the sync figures below their targets: %s", "; ".join(ceiling.short_of))
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(
        json.dumps(
            {
                "hit_rate": ceiling.overall.hit_rate,
                "precision": ceiling.overall.precision,
                "events": ceiling.overall.events,
                "onsets": ceiling.overall.onsets,
                "by_class": {c: {"hit_rate": m.hit_rate, "events": m.events} for c, m in ceiling.by_class.items()},
                "short_of": ceiling.short_of,
            },
            indent=1,
        )
        + "\n"
    )
    return ceiling


def _vae_fp(net: AudioX) -> str:
    """A short hash of the VAE weights: latents cached for one VAE are never read for another."""
    return state_dict_sha256(net.pretransform.state_dict())[:12]
