"""Music completion (a cue continuing a given sketch, audiox_core/reel/given_sound.py) on the shared music
and loop files, through the pipeline's own path: the cue request, the long-form generator and the
finished cue at 48 kHz.

For each file, the first ``--sketch`` seconds are the sketch and the cue is ``--cue`` seconds long:
- ``kept``: the sketch kept at the cue's start (the sampler steered to it), the rest continued;
- ``heard``: the sketch only heard by the model (its audio prompt), the whole cue new;
- ``none``: the same cue with no sketch (what the model makes from its prompt alone), as a baseline.
Figures: the join's flux ratio (``edge_flux_ratio`` at the sketch's end over the sketch's own median
flux; kept only), and the tempo of the new part against the sketch's (onset autocorrelation,
``train/tempo.py``, folded to the nearest octave: within 5 % is the target).

    .venv/bin/python bench/completion_eval.py --model demo
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audiox_core.model.generate import SamplingSettings  # noqa: E402
from audiox_core.model.longform import generate_scenes  # noqa: E402
from audiox_core.model.runtime import load_model  # noqa: E402
from audiox_core.reel.cues import Cue
from audiox_core.reel.given_sound import cue_request, finished_cue, read_given_audio
from audiox_core.sound.audio import resample
from audiox_core.train.evaluation import edge_flux_ratio  # noqa: E402
from audiox_core.train.tempo import tempo_bpm, tempo_ratio  # noqa: E402

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"
FILES = [
    "music/kevin_macleod_vibe_ace.ogg",
    "music/brahms_hungarian_dance_5.ogg",
    "sfx/loop_compus.flac",
    "sfx/loop_safari.flac",
    "sfx/loop_amen.flac",
]
RATE = 48_000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="demo")
    ap.add_argument("--sketch", type=float, default=4.0, help="seconds of each file given as the sketch")
    ap.add_argument("--cue", type=float, default=12.0, help="the cue's length in seconds")
    ap.add_argument("--steps", type=int, default=SamplingSettings.steps)
    ap.add_argument("--prompt", default="", help="the cue's prompt (default: the model's music prompt)")
    args = ap.parse_args()
    model = load_model(args.model, device="cpu")
    cfg = model.config
    prompt = args.prompt or cfg.prompts.music
    hop_s = cfg.autoencoder.hop / cfg.sample_rate
    sampling = SamplingSettings(steps=args.steps)
    print(f"model {model.label}; sketch {args.sketch:g} s, cue {args.cue:g} s, prompt {prompt!r}, {args.steps} steps")
    print(
        f"{'file':38s} {'sketch BPM':>10s}  {'kept: join':>10s} {'BPM':>6s} {'ratio':>6s}  {'heard: BPM':>10s} {'ratio':>6s}  {'none: BPM':>9s} {'ratio':>6s}"
    )
    hits = {"kept": 0, "heard": 0, "none": 0}
    joins = []
    for name in FILES:
        path = MEDIA / name
        if not path.is_file():
            print(f"{name}: not in {MEDIA}; skipped")
            continue
        whole = read_given_audio(path, RATE, name)
        sketch = whole[:, : int(args.sketch * RATE)]
        if sketch.shape[1] < int(args.sketch * RATE):  # a short loop: repeated to the sketch's length
            reps = int(np.ceil(args.sketch * RATE / whole.shape[1]))
            sketch = np.tile(whole, (1, reps))[:, : int(args.sketch * RATE)]
        base = Cue(0, "music", prompt, 7, prompt_audio=name)
        sketch_bpm = tempo_bpm(sketch, RATE)
        row, frames = {}, np.zeros((0, 8, 8, 3), np.uint8)
        for mode, cue, given in (
            ("kept", base, sketch),
            ("heard", replace(base, prompt_audio_kept=False), sketch),
            ("none", replace(base, prompt_audio=None), None),
        ):
            request = cue_request(cue, frames, args.cue, given, RATE, cfg.sample_rate, hop_s, name)
            (made,) = generate_scenes(model, [request], sampling)
            pcm = resample(made, cfg.sample_rate, RATE)[:, : int(args.cue * RATE)]
            pcm = np.pad(pcm, ((0, 0), (0, int(args.cue * RATE) - pcm.shape[1])))
            out, _ = finished_cue(cue, pcm, given, RATE, -6.0)
            new = out[:, int(args.sketch * RATE) :] if mode == "kept" else out
            bpm = tempo_bpm(new, RATE)
            ratio = tempo_ratio(bpm, sketch_bpm)
            hits[mode] += abs(ratio - 1) <= 0.05
            join = (
                edge_flux_ratio(torch.from_numpy(out), torch.from_numpy(sketch), [args.sketch], RATE)[0]
                if mode == "kept"
                else float("nan")
            )
            if mode == "kept":
                joins.append(join)
            row[mode] = (join, bpm, ratio)
        k, h, n = row["kept"], row["heard"], row["none"]
        print(
            f"{name:38s} {sketch_bpm:10.1f}  {k[0]:10.2f} {k[1]:6.1f} {k[2]:6.3f}  {h[1]:10.1f} {h[2]:6.3f}  {n[1]:9.1f} {n[2]:6.3f}"
        )
    total = len(joins)
    print(
        f"within 5 % of the sketch's tempo: kept {hits['kept']}/{total}, heard {hits['heard']}/{total}, none {hits['none']}/{total};"
        f" join flux ratio median {np.median(joins):.2f} (max {max(joins):.2f})"
    )


if __name__ == "__main__":
    main()
