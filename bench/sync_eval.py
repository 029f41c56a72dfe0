"""Does the sound follow the picture? The demo model (or any AudioX model) on the held-out clips of a
training data folder (``audiox-studio train data build``), generated through the pipeline's own path
(``generate_scenes``: windows with continuation, CFG, the sampler):

- hit rate: visual impact events (impacts, door closes, footsteps) with an audio onset within ±80 ms;
- precision: onsets of those clips that match an event (a matched sound's later transients, within
  0.3 s, are its tail, not onsets of their own);
- the same with each clip given another clip's frames (a derangement): the hit rate must fall;
- the shift probe: each clip's frames delayed by 0.5 s; of the events the unshifted sound hit, the
  share whose onset moved with the picture (an onset within ±40 ms of the event + 0.5 s);
- text control: sound made from captions alone (no picture), classified by nearest centroid on
  log-mel statistics of the real held-out sounds of each of the six classes (impact, door, whoosh,
  footsteps, ambience, music; chance 1/6).

With ``--degraded``, two harder conditions on the same clips and seeds (masked multi-modal training
is meant to help there): half the frames removed (every odd frame replaced by the even one before
it, so the picture keeps its timing at half the frame rate) and the caption cut to its first word.

The real held-out sounds go through the same onset detector first (``reference_*``): the ceiling
the detector allows; then through the model's autoencoder alone (``vae_ceiling``): the ceiling the
autoencoder allows, on a line of its own. Also printed: the sampling time per 10 s window here.

    .venv/bin/python bench/sync_eval.py --data /work/data/demo --model demo
    .venv/bin/python bench/sync_eval.py --data /work/data/demo --model demo --card audiox_core/model/demo/MODEL_CARD.md

The last line reads ``hit_rate=<x> precision=<y> shuffled_hit_rate=<z> shift_moved=<s> text_accuracy=<w>``.
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
    sharp_sounds,
    vae_round_trip,
)
from audiox_core.train.examples import Example, decode_audio, decode_example, load_examples  # noqa: E402

SYNC_CLASSES = ("impact", "door", "footsteps")
SHIFT_S, SHIFT_TOLERANCE_S = 0.5, 0.04


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


def _by_class(clips: list[Example], sounds: list[np.ndarray], rate: int) -> dict[str, Match]:
    out: dict[str, list[Match]] = defaultdict(list)
    for e, s in zip(clips, sounds):
        out[e.sound_class or "unknown"].append(match_events(_events(e), audio_onsets(s, rate)))
    return {c: combine(v) for c, v in sorted(out.items())}


def _delayed(frames: np.ndarray, seconds: float, fps: int) -> np.ndarray:
    """The picture ``seconds`` later: its first frame held that long, the end cut to keep the length."""
    n = int(round(seconds * fps))
    return np.concatenate([np.repeat(frames[:1], n, axis=0), frames[: len(frames) - n]])


def _moved(clips: list[Example], plain: list[np.ndarray], shifted: list[np.ndarray], rate: int) -> tuple[int, int]:
    """(moved, hit): of the events the plain sound hit (±80 ms) that the delayed picture can still
    show, how many have an onset within ±40 ms of the event + the shift in the delayed one's sound."""
    moved = hit = 0
    for e, a, b in zip(clips, plain, shifted):
        onsets_a, onsets_b = audio_onsets(a, rate), audio_onsets(b, rate)
        for t in _events(e):
            if t + SHIFT_S > e.seconds - 0.1 or not any(abs(o - t) <= 0.08 for o in onsets_a):
                continue
            hit += 1
            moved += any(abs(o - (t + SHIFT_S)) <= SHIFT_TOLERANCE_S for o in onsets_b)
    return moved, hit


def _half_frames(frames: np.ndarray) -> np.ndarray:
    """Every odd frame replaced by the even one before it: half the frames gone, the timing kept."""
    out = frames.copy()
    out[1::2] = frames[0 : len(frames) - 1 : 2]
    return out


def _first_word(caption: str) -> str:
    return caption.split()[0] if caption.split() else ""


def _degraded(model, sync: list[Example], scenes: list[SceneRequest], sampling, batch: int, rate: int) -> dict:
    """Hit rate and precision with half the frames removed and with the caption cut to its first word."""
    conditions = {
        "half frames": [SceneRequest(_half_frames(s.frames), s.text, s.seed, s.seconds) for s in scenes],
        "first word": [SceneRequest(s.frames, _first_word(s.text), s.seed, s.seconds) for s in scenes],
    }
    out = {}
    for name, changed in conditions.items():
        m = _match(sync, _generate(model, changed, sampling, batch), rate)
        print(f"{name}: hit_rate={m.hit_rate:.3f} precision={m.precision:.3f} ({m})")
        out[name] = m
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="a folder made by `audiox-studio train data build`")
    ap.add_argument("--model", default="demo")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=SamplingSettings.steps)
    ap.add_argument("--cfg-scale", type=float, default=SamplingSettings.cfg_scale)
    ap.add_argument("--clips", type=int, default=0, help="at most this many held-out clips per measure (0: all)")
    ap.add_argument(
        "--split", default="heldout", help="which split of --data to measure (bench/other_clips.py writes train)"
    )
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--card", type=Path, help="write the figures into this model card's evaluation section")
    ap.add_argument("--degraded", action="store_true", help="also: half the frames removed, the caption's first word")
    args = ap.parse_args()

    model = load_model(args.model, device=args.device)
    cfg = model.config
    rate, fps, size = cfg.sample_rate, cfg.video.video_fps, cfg.video.clip.image_size
    sampling = SamplingSettings(steps=args.steps, cfg_scale=args.cfg_scale)
    held = load_examples(args.data, split=args.split).examples
    sync = [e for e in held if e.sound_class in SYNC_CLASSES and _events(e)]
    if args.clips:
        sync = sync[: args.clips]
    decoded = [decode_example(e, sample_rate=rate, fps=fps, size=size) for e in sync]
    print(f"model {model.label}; {len(sync)} held-out clips with impact events; {sampling}")

    reference = _match(sync, [d.audio for d in decoded], rate)
    print(f"reference (the real sounds): hit_rate={reference.hit_rate:.3f} precision={reference.precision:.3f}")
    ceiling = vae_round_trip(model.network.pretransform, sharp_sounds(sync, rate), rate)
    print(ceiling.line())

    started = time.perf_counter()
    scenes = [SceneRequest(d.frames, d.caption, 1000 + i, e.seconds) for i, (e, d) in enumerate(zip(sync, decoded))]
    sounds = _generate(model, scenes, sampling, args.batch)
    generation_s = time.perf_counter() - started
    matched = _match(sync, sounds, rate)
    print(f"generated: hit_rate={matched.hit_rate:.3f} precision={matched.precision:.3f} ({matched})")
    for cls, m in _by_class(sync, sounds, rate).items():
        print(f"  {cls}: hit_rate={m.hit_rate:.3f} precision={m.precision:.3f} ({m.events} events)")
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

    # The same clips, their pictures 0.5 s later: the onsets should follow them.
    shifted_scenes = [SceneRequest(_delayed(s.frames, SHIFT_S, fps), s.text, s.seed, s.seconds) for s in scenes]
    moved, hit = _moved(sync, sounds, _generate(model, shifted_scenes, sampling, args.batch), rate)
    shift_moved = moved / hit if hit else 0.0
    print(
        f"shift probe: {moved}/{hit} hit events moved {SHIFT_S} s ± {SHIFT_TOLERANCE_S * 1000:.0f} ms with the picture"
    )

    degraded = _degraded(model, sync, scenes, sampling, args.batch, rate) if args.degraded else {}

    by_class: dict[str, list[Example]] = defaultdict(list)
    for e in held:
        if e.sound_class:
            by_class[e.sound_class].append(e)
    text_accuracy, right, text_clips = float("nan"), 0, []
    if len(by_class) < 2:
        print(f"text control: not measured ({len(by_class)} sound class in these clips)")
    else:
        real = {e.id: decode_audio(e.audio, rate) for v in by_class.values() for e in v}
        classifier = LogMelCentroids(rate).fit({c: [real[e.id] for e in v] for c, v in by_class.items()})
        per_class = max(1, (args.clips or 60) // max(1, len(by_class)))
        text_clips = [e for v in by_class.values() for e in v[:per_class]]
        no_picture = np.zeros((0, size, size, 3), np.uint8)  # no frames: no picture (a black one is a picture)
        text_scenes = [SceneRequest(no_picture, e.caption, 2000 + i, e.seconds) for i, e in enumerate(text_clips)]
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
        f"shift probe (hit events moved {SHIFT_S} s ± {SHIFT_TOLERANCE_S * 1000:.0f} ms)": f"{shift_moved:.3f} ({moved}/{hit})",
        "text accuracy (6 classes, chance 0.167)": f"{text_accuracy:.3f} ({right}/{len(text_clips)})",
        "reference hit rate / precision (real sounds)": f"{reference.hit_rate:.3f} / {reference.precision:.3f}",
        "VAE round trip hit rate / precision (the ceiling)": (
            f"{ceiling.overall.hit_rate:.3f} / {ceiling.overall.precision:.3f}; "
            + ", ".join(f"{c} {m.hit_rate:.3f}" for c, m in sorted(ceiling.by_class.items()))
        ),
        "sampling": f"{sampling.sampler}, {sampling.steps} steps, cfg {sampling.cfg_scale}",
        f"generation time per 10 s ({args.device})": f"{10 * generation_s / seconds:.2f} s",
    }
    for name, m in degraded.items():
        figures[f"hit rate / precision, {name}"] = f"{m.hit_rate:.3f} / {m.precision:.3f}"
    if args.card:
        add_evaluation(args.card, figures, "python bench/sync_eval.py " + shlex.join(sys.argv[1:]))
        print(f"figures written to {args.card}")
    print(
        f"hit_rate={matched.hit_rate:.3f} precision={matched.precision:.3f} "
        f"shuffled_hit_rate={shuffled.hit_rate:.3f} shift_moved={shift_moved:.3f} text_accuracy={text_accuracy:.3f}"
        + "".join(
            f" {n.replace(' ', '_')}_hit_rate={m.hit_rate:.3f} {n.replace(' ', '_')}_precision={m.precision:.3f}"
            for n, m in degraded.items()
        )
    )


if __name__ == "__main__":
    main()
