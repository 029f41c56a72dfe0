"""Regenerating a span of a cue (model/inpaint.py) on held-out clips of a training data folder, through
the long-form generator:

- the previous version: each clip's sound from its picture and caption (seed A);
- the span ``--span`` (seconds) made again with seed B, each way spliced into the previous version
  at the model rate (``inpaint.splice``, 25 ms crossfades inside the span): ``guided`` (the sampler
  steered by the previous latents outside the span), ``unguided`` (a fresh generation with seed B,
  spliced: what a producer gets without inpainting), the previous version itself, and for a model
  with the trained inpainting channels (``studio.inpaint.channels``) ``trained`` (the keep-mask and
  kept latents as the DiT's input, no guidance) and ``trained+guided`` (both);
- edge quality: ``edge_flux_ratio`` at both span edges (the spliced sound's spectral flux there over
  the previous version's median flux: 1 is no more change than any other 10 ms);
- inside the span: the sync hit rate and precision of the visual events there (±80 ms).

    .venv/bin/python bench/inpaint_eval.py --data /work/data/demo2 --model demo --clips 8
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audiox_core.model.config import InpaintConfig  # noqa: E402
from audiox_core.model.generate import SamplingSettings  # noqa: E402
from audiox_core.model.inpaint import Span, splice  # noqa: E402
from audiox_core.model.longform import SceneRequest, generate_scenes  # noqa: E402
from audiox_core.model.runtime import load_model  # noqa: E402
from audiox_core.train.evaluation import SHARP_KINDS, audio_onsets, combine, edge_flux_ratio, match_events  # noqa: E402
from audiox_core.train.examples import decode_example, load_examples  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="a folder made by `audiox-studio train data build`")
    ap.add_argument("--model", default="demo")
    ap.add_argument("--clips", type=int, default=8)
    ap.add_argument("--span", type=float, nargs=2, default=(2.0, 4.0), metavar=("IN", "OUT"))
    ap.add_argument("--steps", type=int, default=SamplingSettings.steps)
    args = ap.parse_args()
    model = load_model(args.model, device="cpu")
    cfg = model.config
    rate, fps, size = cfg.sample_rate, cfg.video.video_fps, cfg.video.clip.image_size
    sampling = SamplingSettings(steps=args.steps)
    span = Span(*args.span)
    clips = [e for e in load_examples(args.data, split="heldout").examples if e.seconds > span.end_s + 0.5]
    clips = [e for e in clips if any(span.start_s <= v.t < span.end_s for v in e.events if v.kind in SHARP_KINDS)]
    clips = clips[: args.clips]
    decoded = [decode_example(e, sample_rate=rate, fps=fps, size=size) for e in clips]
    print(f"model {model.label}; {len(clips)} held-out clips with events in {span.start_s}–{span.end_s} s")

    def scenes(seed: int, previous: list[np.ndarray] | None = None) -> list[SceneRequest]:
        return [
            SceneRequest(
                d.frames,
                d.caption,
                seed + i,
                e.seconds,
                None if previous is None else previous[i],
                (span,) if previous else (),
            )
            for i, (e, d) in enumerate(zip(clips, decoded))
        ]

    def inpainted(channels: bool, guidance: bool) -> list[np.ndarray]:
        """The span made again by ``model`` inpainting this way, spliced into the previous version."""
        config = dataclasses.replace(cfg, inpaint=InpaintConfig(channels=channels, guidance=guidance))
        made = generate_scenes(dataclasses.replace(model, config=config), scenes(500, before), sampling)
        return [splice(b, a.numpy(), [span], rate) for b, a in zip(before, made)]

    before = [a.numpy() for a in generate_scenes(model, scenes(100), sampling)]
    fresh = [a.numpy() for a in generate_scenes(model, scenes(500), sampling)]
    ways = {"guided": inpainted(False, True)}
    if cfg.dit.inpaint_channels:
        ways |= {"trained": inpainted(True, False), "trained+guided": inpainted(True, True)}
    ways |= {"unguided": [splice(b, f, [span], rate) for b, f in zip(before, fresh)], "previous": before}
    for name, sounds in ways.items():
        ratios = [r for b, s in zip(before, sounds) for r in edge_flux_ratio(s, b, [span.start_s, span.end_s], rate)]
        matches = []
        for e, s in zip(clips, sounds):
            events = [v.t for v in e.events if v.kind in SHARP_KINDS and span.start_s <= v.t < span.end_s]
            onsets = [o for o in audio_onsets(s, rate) if span.start_s <= o < span.end_s]
            matches.append(match_events(events, onsets))
        m = combine(matches)
        print(
            f"{name}: edge flux ratio median {np.median(ratios):.2f} max {np.max(ratios):.2f}; "
            f"in the span hit_rate={m.hit_rate:.3f} precision={m.precision:.3f} ({m})"
        )


if __name__ == "__main__":
    main()
