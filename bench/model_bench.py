"""AudioX speed: seconds per sampling step, per conditioning, per VAE decode and per 10 s window,
ours beside straightforward implementations of the same maths run the way the official code runs
them (bench/reference_dit.py, bench/reference_parts.py), with TFLOP/s over FLOPs counted from the
config and, on CUDA, the card's measured bf16 matmul rate.

    .venv/bin/python bench/model_bench.py --config tiny --device cpu
    .venv/bin/python bench/model_bench.py --config base --device cpu --batch 2 --timed-steps 2
    .venv/bin/python bench/model_bench.py --config base --device cuda --batch 8

Weights are synthetic (recipe audiox-synth-v1), so no checkpoint is needed; speed does not depend
on the values. Text conditioning is a random (B, 128, 768) tensor (T5 is outside the model). A
window = conditioning + ``--window-steps`` sampling steps + VAE decode, each part measured here for
both (ours' conditioning includes the per-layer cross-attention keys and values it computes once; the
reference recomputes them inside every step, as the official DiT does). Each part runs ours and the
reference in turn, ``--repeats`` rounds, and keeps each one's fastest.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reference_dit import reference_guided  # noqa: E402
from reference_parts import reference_condition, reference_decode  # noqa: E402

from audiox_core.model.checkpoint import load_weights  # noqa: E402
from audiox_core.model.config import AudioXConfig, DiTConfig  # noqa: E402
from audiox_core.model.dit import Conditions  # noqa: E402
from audiox_core.model.onednn import pack_linears  # noqa: E402
from audiox_core.model.parity_weights import synthetic_state_dict
from audiox_core.model.runtime import dtype_plan  # noqa: E402
from audiox_core.model.spec import PRESETS  # noqa: E402

CONFIGS = {
    "tiny": PRESETS / "tiny.json",
    "base": Path(__file__).resolve().parents[1].parent / "shared" / "audiox" / "config_base.json",
}


def step_flops(d: DiTConfig, tokens: int, cond_tokens: int, batch: int) -> float:
    """FLOPs of one guided DiT evaluation (multiply-add = 2): both CFG branches through self-attention
    and feed-forward, the conditional branch through cross-attention (the unconditional branch's
    cross-attention is exactly zero), keys/values of the condition excluded (once per request)."""
    e, n = d.embed_dim, tokens + 1
    self_attn = 2 * n * e * 3 * e + 2 * 2 * n * n * e + 2 * n * e * e
    ff = 2 * n * e * 2 * d.ff_mult * e + 2 * n * d.ff_mult * e * e
    cross = 2 * n * e * e + 2 * 2 * n * cond_tokens * e + 2 * n * e * e
    io = 2 * 2 * tokens * d.io_channels * e + 2 * 2 * tokens * d.io_channels**2
    return batch * (2 * (d.depth * (self_attn + ff) + io) + d.depth * cross)


def timed(fn: Callable[[], object], device: torch.device, repeats: int, warm: bool = True) -> float:
    if warm:
        fn()
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync(device)
    return (time.perf_counter() - start) / repeats


def side_by_side(
    ours: Callable[[], object], reference: Callable[[], object], device: torch.device, rounds: int, repeats: int = 1
) -> tuple[float, float]:
    """Seconds per call of each, alternating them ``rounds`` times (a warm-up first), fastest round kept."""
    best = [float("inf"), float("inf")]
    for fn in (ours, reference):
        fn()
    for _ in range(rounds):
        for i, fn in enumerate((ours, reference)):
            best[i] = min(best[i], timed(fn, device, repeats, warm=False))
    return best[0], best[1]


def _agree(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).abs().max() / b.float().abs().max())


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_rate(device: torch.device, n: int = 8192) -> float:
    """Measured bf16 matmul TFLOP/s of the card (n×n×n)."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    seconds = timed(lambda: a @ b, device, 20)
    return 2 * n**3 / seconds / 1e12


def synthetic_inputs(cfg: AudioXConfig, batch: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """Seeded random video frames, text embeddings, audio prompt, prompt noise and latent for ``batch`` requests."""
    g = torch.Generator().manual_seed(1)
    size = cfg.video.clip.image_size
    video = torch.rand(batch, cfg.video.n_frames, 3, size, size, generator=g) * 255
    text = torch.randn(batch, cfg.text.max_length, cfg.cond_dim, generator=g)
    prompt = 0.1 * torch.randn(batch, cfg.audio_channels, cfg.audio_prompt_samples, generator=g)
    prompt_noise = torch.randn(batch, cfg.audio.autoencoder.latent_dim, cfg.audio.n_tokens, generator=g)
    x = torch.randn(batch, cfg.dit.io_channels, cfg.latent_frames, generator=g)
    return tuple(t.to(device) for t in (video, text, prompt, prompt_noise, x))


def cpu_name() -> str:
    """The CPU's model name (Linux), for the report."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "an unnamed CPU"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="tiny", help="tiny, base or a config.json path")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=1, help="requests per batch (CFG doubles the DiT batch)")
    p.add_argument("--timed-steps", type=int, default=5)
    p.add_argument("--window-steps", type=int, default=100, help="sampling steps per window (official app: 100)")
    p.add_argument("--cfg-scale", type=float, default=7.0)
    p.add_argument("--repeats", type=int, default=2, help="rounds of ours and the reference for each part")
    p.add_argument("--compile", action="store_true", help="torch.compile the DiT (CUDA)")
    p.add_argument("--json", help="also write the figures to this JSON file")
    args = p.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)

    cfg = AudioXConfig.from_json(CONFIGS.get(args.config, args.config))
    started = time.perf_counter()
    net = (
        load_weights(cfg, synthetic_state_dict(cfg, seed=0), f"synthetic {args.config}")
        .to(device)
        .eval()
        .requires_grad_(False)
    )
    build_s = time.perf_counter() - started
    net.to_inference_dtype(dtype_plan(device, cfg.text.kind).dit)  # the DiT's dtype in production: bf16 on CUDA
    if device.type == "cpu":  # as load_model does (bench/reference_dit.py calls F.linear itself)
        pack_linears(net.model.model.transformer.layers, 2 * args.batch * (cfg.latent_frames + 1))
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    dit = net.model.model
    b = args.batch
    video, text, prompt, prompt_noise, x = synthetic_inputs(cfg, b, device)
    sigma = torch.tensor(10.0, device=device)

    results: dict[str, float | str | int] = {
        "config": args.config,
        "device": str(device),
        "batch": b,
        "dtype": str(net.dit_dtype),
    }
    with torch.inference_mode():
        cond = net.condition(video, text, prompt, prompt_noise)
        kvs = net.cross_attention_kv(cond)
        if args.compile:  # an instance attribute shadows the method, so guided() calls the compiled pass
            dit.forward_once = torch.compile(dit.forward_once)
        ours = lambda: net.denoise(x, sigma, Conditions(kvs), args.cfg_scale)  # noqa: E731
        t = torch.full((b,), float(torch.atan(sigma) * 2 / torch.pi), device=device)
        x_in = (x / torch.sqrt(sigma**2 + 1)).to(net.dit_dtype)
        cond_dit = cond.to(net.dit_dtype)
        reference = lambda: reference_guided(dit, x_in, t, cond_dit, args.cfg_scale)  # noqa: E731
        agree = _agree(dit.guided(x_in, t, Conditions(kvs), args.cfg_scale), reference())
        results["ours_step_s"], results["reference_step_s"] = side_by_side(
            ours, reference, device, args.repeats, args.timed_steps
        )
        ours_cond = lambda: net.cross_attention_kv(net.condition(video, text, prompt, prompt_noise))  # noqa: E731
        ref_cond = lambda: reference_condition(net, video, text, prompt, prompt_noise)  # noqa: E731
        agree_cond = _agree(net.condition(video, text, prompt, prompt_noise), ref_cond())
        results["conditioning_s"], results["reference_conditioning_s"] = side_by_side(
            ours_cond, ref_cond, device, args.repeats
        )
        latent = torch.randn(b, cfg.dit.io_channels, cfg.latent_frames, device=device)
        agree_vae = _agree(net.pretransform.decode(latent), reference_decode(net.pretransform, latent))
        results["vae_decode_s"], results["reference_vae_decode_s"] = side_by_side(
            lambda: net.pretransform.decode(latent),
            lambda: reference_decode(net.pretransform, latent),
            device,
            args.repeats,
        )
    n_cond = cfg.video.n_tokens + cfg.text.max_length + cfg.audio.n_tokens  # video, text, audio prompt tokens
    flops = step_flops(cfg.dit, cfg.latent_frames, n_cond, b)
    results["step_tflop"] = flops / 1e12
    results["ours_tflops"] = flops / results["ours_step_s"] / 1e12
    results["ours_window_s"] = (
        results["conditioning_s"] + args.window_steps * results["ours_step_s"] + results["vae_decode_s"]
    )
    results["reference_window_s"] = (
        results["reference_conditioning_s"]
        + args.window_steps * results["reference_step_s"]
        + results["reference_vae_decode_s"]
    )
    results["cpu"] = cpu_name()
    if device.type == "cuda":
        results["gpu"] = torch.cuda.get_device_name(device)
        results["matmul_bf16_tflops"] = matmul_rate(device)
        results["fraction_of_matmul_rate"] = results["ours_tflops"] / results["matmul_bf16_tflops"]
        results["peak_memory_gb"] = torch.cuda.max_memory_allocated(device) / 1e9

    print(
        f"AudioX {args.config} on {results.get('gpu', results['cpu'] if device.type == 'cpu' else device)} "
        f"({torch.get_num_threads()} threads), batch {b} (DiT batch {2 * b} with CFG), DiT {results['dtype']}, "
        f"synthetic weights built in {build_s:.1f} s; ours vs reference agree to {agree:.1e} (step), "
        f"{agree_cond:.1e} (condition tokens), {agree_vae:.1e} (VAE decode) (max|Δ|/max)"
    )
    print(f"  {'':34s} {'ours':>10s} {'reference':>10s} {'ratio':>7s}")
    rows = (
        ("seconds per sampling step", "ours_step_s", "reference_step_s"),
        ("conditioning (once per window)", "conditioning_s", "reference_conditioning_s"),
        ("VAE decode (once per window)", "vae_decode_s", "reference_vae_decode_s"),
        (f"10 s window ({args.window_steps} steps)", "ours_window_s", "reference_window_s"),
    )
    for label, mine, theirs in rows:
        print(f"  {label:34s} {results[mine]:10.3f} {results[theirs]:10.3f} {results[mine] / results[theirs]:7.2f}")
    print(f"  {results['step_tflop']:.3f} TFLOP per step → {results['ours_tflops']:.2f} TFLOP/s")
    if device.type == "cuda":
        print(
            f"  measured bf16 matmul rate {results['matmul_bf16_tflops']:.0f} TFLOP/s; sampling reaches "
            f"{100 * results['fraction_of_matmul_rate']:.1f} % of it; peak memory {results['peak_memory_gb']:.1f} GB"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
