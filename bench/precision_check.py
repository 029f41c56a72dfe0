"""How far bf16 moves one guided DiT evaluation from fp32, for ours and for the plain reference.

    python3 bench/precision_check.py [--config tiny|base|PATH] [--device cuda] [--batch 2]

Builds the network with synthetic weights in fp32, evaluates ours (SDPA, cached condition keys and
values) and the reference (bench/reference_dit.py: explicit softmax attention) in fp32, then casts
the DiT to bf16 as the pipeline does on a GPU and evaluates both again. Prints max|Δ|/max of each
against the fp32 result of ours, so a bf16 disagreement between the two can be placed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from model_bench import CONFIGS, synthetic_inputs  # noqa: E402
from reference_dit import reference_guided  # noqa: E402

from audiox_core.model.checkpoint import load_weights  # noqa: E402
from audiox_core.model.config import AudioXConfig  # noqa: E402
from audiox_core.model.dit import Conditions  # noqa: E402
from audiox_core.model.parity_weights import synthetic_state_dict


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).abs().max() / b.float().abs().max())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="tiny")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--cfg-scale", type=float, default=7.0)
    args = p.parse_args()
    device = torch.device(args.device)
    cfg = AudioXConfig.from_json(CONFIGS.get(args.config, args.config))
    net = load_weights(cfg, synthetic_state_dict(cfg, seed=0), "synthetic").to(device).eval().requires_grad_(False)
    torch.backends.cuda.matmul.allow_tf32 = False
    b = args.batch
    video, text, prompt, prompt_noise, x = synthetic_inputs(cfg, b, device)
    sigma = torch.tensor(10.0, device=device)
    t = torch.full((b,), float(torch.atan(sigma) * 2 / torch.pi), device=device)
    dit = net.model.model
    results = {}
    with torch.inference_mode():
        cond = net.condition(video, text, prompt, prompt_noise)
        for name in ("fp32", "bf16"):
            if name == "bf16":
                net.to_inference_dtype(torch.bfloat16)
            x_in = (x / torch.sqrt(sigma**2 + 1)).to(net.dit_dtype)
            kvs = net.cross_attention_kv(cond)
            for guidance in (1.0, args.cfg_scale):
                results[(name, "ours", guidance)] = dit.guided(x_in, t, Conditions(kvs), guidance).float()
                results[(name, "reference", guidance)] = reference_guided(
                    dit, x_in, t, cond.to(net.dit_dtype), guidance
                ).float()
    print(f"AudioX {args.config} on {device}, batch {b}, synthetic weights: max|Δ|/max against ours in fp32")
    for guidance in (1.0, args.cfg_scale):
        base = results[("fp32", "ours", guidance)]
        for key in (("fp32", "reference"), ("bf16", "ours"), ("bf16", "reference")):
            print(f"  cfg {guidance:g}  {key[1]:>9} {key[0]}: {relative(results[(*key, guidance)], base):.2e}")


if __name__ == "__main__":
    main()
