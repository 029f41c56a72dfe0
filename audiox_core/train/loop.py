"""The training loop behind ``audiox-studio train``: the VAE stage, then the DiT stage on its latents.

- VAE: random crops, multi-resolution STFT + L1 + KL; the EMA weights become both the model's
  autoencoder and the audio-prompt conditioner's frozen copy.
- DiT: the DiT, the video conditioner and the audio prompt's projection learn on the frozen VAE's
  cached latents (see ``batches``), AdamW with linear warm-up, gradient clipping, EMA.
- ``--init``: an AudioX release (official format, loaded strictly) is the starting point; its VAE
  stays frozen, and with ``lora_rank`` only LoRA adapters on the DiT learn (merged before saving).
- Several processes (torchrun): DistributedDataParallel; each rank takes positions rank, rank + W, …
  of the same global batch, so N processes compute what one does with that batch.

Out folder: ``<stage>/checkpoint.pt`` (resumable), ``model/`` (config.json + model.safetensors: the
EMA weights, loadable with ``--model``), ``metrics.json`` and ``loss.png``.
"""

from __future__ import annotations

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

from audiox_core.errors import InputError, ModelError
from audiox_core.model.audiox import AudioX
from audiox_core.model.checkpoint import load_weights, read_state_dict, state_dict_sha256
from audiox_core.model.conditioners import TextEncoder
from audiox_core.model.config import AudioXConfig
from audiox_core.model.runtime import resolve_device
from audiox_core.model.spec import resolve_model_spec
from audiox_core.train.batches import Clip, DitBatch, DitSampler, decode_clips, encode_latents, fingerprint, vae_crops
from audiox_core.train.card import model_card
from audiox_core.train.ema import EMA
from audiox_core.train.examples import load_examples
from audiox_core.train.lora import add_lora, merge_lora
from audiox_core.train.objective import step_generator, v_loss
from audiox_core.train.plot import draw_losses
from audiox_core.train.recipe import TrainConfig
from audiox_core.train.spectral import multi_resolution_stft_loss
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
        """This rank's positions in a global batch."""
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
    def __init__(self, net: AudioX, l1_weight: float, kl_weight: float) -> None:
        super().__init__()
        self.vae = net.pretransform
        self.l1_weight, self.kl_weight = l1_weight, kl_weight

    def forward(self, audio: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
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
        return stft + self.l1_weight * l1 + self.kl_weight * kl


class DitObjective(nn.Module):
    def __init__(self, net: AudioX) -> None:
        super().__init__()
        self.net = net

    def forward(self, b: DitBatch) -> torch.Tensor:
        cond = self.net.condition(b.video, b.text, b.prompt, b.prompt_noise)  # (B, S, cond_dim)
        cond = cond * b.keep[:, None, None]
        return v_loss(self.net.model.model, b.x0, cond, b.t, b.noise)


def _trainable_dit(net: AudioX, lora_rank: int, lora_alpha: float) -> list[tuple[str, nn.Parameter]]:
    """Set which parameters learn in the DiT stage and return them by name."""
    net.requires_grad_(False)
    if lora_rank > 0:
        add_lora(net.model.model, lora_rank, lora_alpha)
    else:
        net.model.requires_grad_(True)
        net.model.model.to_global_embed.requires_grad_(False)  # unused by AudioX (no global condition)
        video = net.conditioner.conditioners["video_prompt"]
        video.requires_grad_(True)
        video.visual_encoder_model.visual_projection.requires_grad_(False)  # AudioX reads last_hidden_state
        video.visual_encoder_model.vision_model.post_layernorm.requires_grad_(False)
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
) -> tuple[StageLog, EMA, bool]:
    """Steps ``start … steps − 1`` of one stage; returns its log, the EMA and whether it finished."""
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
                },
            )
        world.barrier()

    objective.train()
    began = time.perf_counter() - log_.wall_s
    session = time.perf_counter()
    mine = world.share(batch_size)
    try:
        for step in range(start, steps):
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
                loss = loss_of(wrapped, step, mine)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip > 0:
                nn.utils.clip_grad_norm_(trained, grad_clip)
            optimiser.step()
            schedule.step()
            ema.update()
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


def _resume_state(ckpt: Path, recipe: TrainConfig) -> dict[str, Any]:
    """The checkpoint to continue from, read before the data is; one line when it is not a checkpoint
    of ours or belongs to another recipe."""
    state = load_checkpoint(ckpt)
    if state["recipe"] != recipe.to_dict():
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
        net = load_weights(spec.config, read_state_dict(spec.weights_path), str(spec.weights_path))
        return net, spec.config, json.loads(spec.config_path.read_text())
    cfg, raw = recipe.architecture()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.seed)
        net = AudioX(cfg)
    return net, cfg, raw


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
    """Train the recipe's stages on the "train" split of ``data`` into ``out`` (see the module doc).
    ``stop_at`` ends the session after that many steps of a stage with a checkpoint, as an
    interruption would (``resume`` continues it)."""
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
    ckpt = out / stages[last] / "checkpoint.pt"
    resumed = _resume_state(ckpt, recipe) if resume else None
    examples = load_examples(data, split="train")
    for s in examples.skipped:
        log.warning("skipped %s: %s", s.id, s.reason)
    data_fp = fingerprint(examples.examples)
    if resumed is not None:
        _check_data(ckpt, resumed, data_fp)
    net, cfg, raw = _network(recipe, init)
    net.to(dev)
    run = _Run(net, cfg, recipe, decode_clips(examples.examples, cfg), out, data_fp, world, dev, progress, stop_at)
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
    state = _resume_state(ckpt, recipe)
    examples = load_examples(data, split="train")
    data_fp = fingerprint(examples.examples)
    _check_data(ckpt, state, data_fp)
    net, _, raw = _network(recipe, init)
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
    """The autoencoder on random crops of the clips' audio."""
    s, net, cfg, dev = run.recipe.vae, run.net, run.cfg, run.device
    net.requires_grad_(False)
    net.pretransform.requires_grad_(True)
    if state is not None:
        net.load_state_dict(state["model"])
    objective = VaeObjective(net, s.l1_weight, s.kl_weight)
    hop = cfg.autoencoder.hop
    crop = max(hop, int(round(s.crop_s * cfg.sample_rate / hop)) * hop)

    def loss_of(module: nn.Module, step: int, positions: list[int]) -> torch.Tensor:
        g = step_generator(run.recipe.seed, "vae", step)
        indices = torch.randint(0, len(run.clips), (s.batch_size,), generator=g).tolist()
        audio, noise = vae_crops(
            run.clips, run.recipe.seed, step, positions, [indices[p] for p in positions], crop, cfg
        )
        return module(audio.to(dev), noise.to(dev))

    params = [(f"pretransform.{n}", p) for n, p in net.pretransform.named_parameters()]
    return _run_stage(
        "vae", objective=objective, params=params, loss_of=loss_of, steps=s.steps, batch_size=s.batch_size,
        lr=s.lr, betas=s.betas, weight_decay=0.0, warmup=0, grad_clip=s.grad_clip, ema_decay=s.ema_decay,
        checkpoint_every=s.checkpoint_every, **_stage_args(run, state),
    )  # fmt: skip


def _dit(run: _Run, state: dict[str, Any] | None) -> tuple[StageLog, EMA, bool]:
    """The DiT and conditioners on the frozen VAE's cached latents."""
    s, net, cfg, dev = run.recipe.dit, run.net, run.cfg, run.device
    params = _trainable_dit(net, s.lora_rank, s.lora_alpha)
    if state is not None:  # before the latents: a resumed DiT stage's VAE is the checkpoint's
        net.load_state_dict(state["model"])
    net.eval()
    cache = run.out / "cache" / f"latents-{run.data_fp[:16]}-{_vae_fp(net)}.safetensors"
    latents = encode_latents(net, run.clips, cache, dev)
    t5_dir = os.environ.get("AUDIOX_T5_DIR")
    text = TextEncoder(cfg.text, cfg.cond_dim, Path(t5_dir) if t5_dir else None)
    text.to(torch.device("cpu"), torch.float32)
    sampler = DitSampler(cfg, s, run.clips, latents, text, run.recipe.seed)
    net.model.model.transformer.gradient_checkpointing = s.grad_checkpointing
    objective = DitObjective(net)

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


def _vae_fp(net: AudioX) -> str:
    """A short hash of the VAE weights: latents cached for one VAE are never read for another."""
    return state_dict_sha256(net.pretransform.state_dict())[:12]
