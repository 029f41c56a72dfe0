"""Does the sound follow the picture? The demo model (or any AudioX model) on the held-out clips of a
training data folder (``audiox-studio train data build``), generated through the pipeline's own path
(``generate_scenes``: windows with continuation, CFG, the sampler):

- hit rate: visual impact events (impacts, door closes, footsteps) with an audio onset within ±80 ms;
- precision: onsets of those clips that match an event (a matched sound's later transients, within
  0.3 s, are its tail, not onsets of their own);
- the same with each clip given another clip's frames (a derangement): the hit rate must fall;
- text control: sound made from captions alone (no picture), classified by nearest centroid on
  log-mel statistics of the real held-out sounds of each class.

The real held-out sounds go through the same onset detector first (``reference_*``): the ceiling
the detector allows. Also printed: the DiT's sampling time per 10 s window here.

    .venv/bin/python bench/sync_eval.py --data /work/data/demo --model demo
    .venv/bin/python bench/sync_eval.py --data /work/data/demo --model demo --card audiox_core/model/demo/MODEL_CARD.md

The last line reads ``hit_rate=<x> precision=<y> shuffled_hit_rate=<z> text_accuracy=<w>``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audiox_core.model.generate import SamplingSettings  # noqa: E402
from audiox_core.model.longform import SceneRequest, generate_scenes  # noqa: E402
from audiox_core.model.runtime import load_model  # noqa: E402
from audiox_core.train.card import add_evaluation  # noqa: E402
from audiox_core.train.evaluation import (  # noqa: E402
    SHARP_KINDS,
    LogMelCentroids,
    Match,
    audio_onsets,
    combine,
    match_events,
)
from audiox_core.train.examples import Example, decode_audio, decode_example, load_examples  # noqa: E402

SYNC_CLASSES = ("impact", "door", "footsteps")


def _events(example: Example) -> list[float]:
    return [e.t for e in example.events if e.kind in SHARP_KINDS]


def _generate(model, scenes: list[SceneRequest], sampling: SamplingSettings, batch: int) -> list[np.ndarray]:
    out: list[np.ndarray] = []
    for i in range(0, len(scenes), batch):
        out += [a.float().numpy() for a in generate_scenes(model, scenes[i : i + batch], sampling)]
        print(f"  generated {len(out)}/{len(scenes)}", file=sys.stderr, flush=True)
    return out


def _match(clips: list[Example], sounds: list[np.ndarray], rate: int) -> Match:
    return combine([match_events(_events(e), audio_onsets(s, rate)) for e, s in zip(clips, sounds)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="a folder made by `audiox-studio train data build`")
    ap.add_argument("--model", default="demo")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=SamplingSettings.steps)
    ap.add_argument("--cfg-scale", type=float, default=SamplingSettings.cfg_scale)
    ap.add_argument("--clips", type=int, default=0, help="at most this many held-out clips per measure (0: all)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--card", type=Path, help="write the figures into this model card's evaluation section")
    args = ap.parse_args()

    model = load_model(args.model, device=args.device)
    cfg = model.config
    rate, fps, size = cfg.sample_rate, cfg.video.video_fps, cfg.video.clip.image_size
    sampling = SamplingSettings(steps=args.steps, cfg_scale=args.cfg_scale)
    held = load_examples(args.data, split="heldout").examples
    sync = [e for e in held if e.sound_class in SYNC_CLASSES and _events(e)]
    if args.clips:
        sync = sync[: args.clips]
    decoded = [decode_example(e, sample_rate=rate, fps=fps, size=size) for e in sync]
    print(f"model {model.label}; {len(sync)} held-out clips with impact events; {sampling}")

    reference = _match(sync, [d.audio for d in decoded], rate)
    print(f"reference (the real sounds): hit_rate={reference.hit_rate:.3f} precision={reference.precision:.3f}")

    started = time.perf_counter()
    scenes = [SceneRequest(d.frames, d.caption, 1000 + i, e.seconds) for i, (e, d) in enumerate(zip(sync, decoded))]
    sounds = _generate(model, scenes, sampling, args.batch)
    generation_s = time.perf_counter() - started
    matched = _match(sync, sounds, rate)
    print(f"generated: hit_rate={matched.hit_rate:.3f} precision={matched.precision:.3f} ({matched})")
    seconds = sum(e.seconds for e in sync)
    print(
        f"generation: {generation_s:.1f} s for {seconds:.0f} s of sound = {10 * generation_s / seconds:.2f} s per 10 s"
    )

    # Each clip with the next clip's frames (and its own caption): a derangement.
    shuffled_scenes = [
        SceneRequest(scenes[(i + 1) % len(scenes)].frames, s.text, s.seed, s.seconds) for i, s in enumerate(scenes)
    ]
    shuffled = _match(sync, _generate(model, shuffled_scenes, sampling, args.batch), rate)
    print(f"shuffled frames: hit_rate={shuffled.hit_rate:.3f} precision={shuffled.precision:.3f}")

    by_class: dict[str, list[Example]] = defaultdict(list)
    for e in held:
        if e.sound_class:
            by_class[e.sound_class].append(e)
    real = {e.id: decode_audio(e.audio, rate) for v in by_class.values() for e in v}
    classifier = LogMelCentroids(rate).fit({c: [real[e.id] for e in v] for c, v in by_class.items()})
    per_class = max(1, (args.clips or 60) // max(1, len(by_class)))
    text_clips = [e for v in by_class.values() for e in v[:per_class]]
    blank = np.zeros((round(fps * 8), size, size, 3), np.uint8)
    text_scenes = [
        SceneRequest(blank[: round(e.seconds * fps)], e.caption, 2000 + i, e.seconds) for i, e in enumerate(text_clips)
    ]
    text_sounds = _generate(model, text_scenes, sampling, args.batch)
    right = sum(classifier.predict(s) == e.sound_class for e, s in zip(text_clips, text_sounds))
    real_right = sum(classifier.predict(real[e.id]) == e.sound_class for e in text_clips)
    text_accuracy = right / len(text_clips)
    print(
        f"text control: {right}/{len(text_clips)} prompted classes recovered (the real sounds: {real_right}/{len(text_clips)})"
    )

    figures = {
        "held-out clips (sync)": len(sync),
        "hit rate (±80 ms)": f"{matched.hit_rate:.3f}",
        "precision": f"{matched.precision:.3f}",
        "shuffled-frames hit rate": f"{shuffled.hit_rate:.3f}",
        "text accuracy": f"{text_accuracy:.3f}",
        "reference hit rate / precision (real sounds)": f"{reference.hit_rate:.3f} / {reference.precision:.3f}",
        "sampling": f"{sampling.sampler}, {sampling.steps} steps, cfg {sampling.cfg_scale}",
        f"generation time per 10 s ({args.device})": f"{10 * generation_s / seconds:.2f} s",
    }
    if args.card:
        add_evaluation(args.card, figures, "python bench/sync_eval.py " + shlex.join(sys.argv[1:]))
        print(f"figures written to {args.card}")
    print(
        f"hit_rate={matched.hit_rate:.3f} precision={matched.precision:.3f} "
        f"shuffled_hit_rate={shuffled.hit_rate:.3f} text_accuracy={text_accuracy:.3f}"
    )


if __name__ == "__main__":
    main()
