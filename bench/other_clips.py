"""Evaluation clips drawn by code other than the training renderer, for ``bench/sync_eval.py``.

The training data's renderer (``audiox_core.train.builder``) fits every motion through frame-exact
contacts on a dim gradient. These clips come from a small physics simulation instead: an ellipse
with an outline dropped under gravity onto a ledge with restitution (contacts fall between frames;
the sound starts at the exact contact time), a block slammed into a wall, a hammer head striking a
plate, each on a textured background in other sizes and colours, with the held-out sounds. A model
that only learned the training renderer's look does not transfer to them.

    .venv/bin/python bench/other_clips.py --out /work/data/other --media ../shared/media
    .venv/bin/python bench/sync_eval.py --data /work/data/other --split train --model demo
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audiox_core.train.builder import CLASS_WORDS, SoundBank, _write_video, _write_wav16

FPS, RATE, W, H = 24, 44100, 192, 128


def _texture(rng: np.random.Generator) -> np.ndarray:
    """A checkered, noisy wall: busier than the training renderer's gradients."""
    yy, xx = np.mgrid[0:H, 0:W]
    cells = ((yy // rng.integers(8, 20)) + (xx // rng.integers(8, 20))) % 2
    base = rng.uniform(20, 90, 3)
    image = base[None, None] * (0.8 + 0.2 * cells[..., None]) + rng.normal(0, 4, (H, W, 3))
    return image.clip(0, 255).astype(np.uint8)


def _drop(rng: np.random.Generator, seconds: float) -> tuple[np.ndarray, list[float], str]:
    """An ellipse falling onto a ledge, bouncing with restitution 0.6–0.75 (simulated at 1 kHz)."""
    n = int(seconds * FPS)
    ledge = int(H * rng.uniform(0.75, 0.9))
    ry, rx = rng.uniform(8, 16), rng.uniform(10, 20)
    colour = tuple(int(c) for c in rng.uniform(120, 255, 3))
    y, v, g, e = rng.uniform(10, 30), 0.0, rng.uniform(400, 700), rng.uniform(0.6, 0.75)
    x, vx = rng.uniform(0.2, 0.6) * W, rng.uniform(-20, 30)
    dt, t, contacts, positions = 1e-3, 0.0, [], []
    wall = _texture(rng)
    for f in range(n):
        while t < f / FPS:
            v += g * dt
            y += v * dt
            x += vx * dt
            if y + ry >= ledge and v > 0:
                y = ledge - ry
                if v > 25:  # audible contacts only; then it rests
                    contacts.append(t)
                v = -v * e
            t += dt
        positions.append((x, y))
    frames = np.empty((n, H, W, 3), np.uint8)
    for f, (px, py) in enumerate(positions):
        image = wall.copy()
        cv2.rectangle(image, (0, ledge), (W, H), (90, 70, 60), -1)
        cv2.ellipse(image, (int(px), int(py)), (int(rx), int(ry)), 0, 0, 360, colour, -1, cv2.LINE_AA)
        cv2.ellipse(image, (int(px), int(py)), (int(rx), int(ry)), 0, 0, 360, (20, 20, 20), 2, cv2.LINE_AA)
        frames[f] = image
    contacts = [c for c in contacts if c < seconds - 0.3]
    return frames, contacts, f"{CLASS_WORDS['impact']}: an oval drops onto a ledge and bounces"


def _slam(rng: np.random.Generator, seconds: float) -> tuple[np.ndarray, list[float], str]:
    """A block sliding from the left that slams into a wall and stops, twice (pulled back between)."""
    n = int(seconds * FPS)
    wall_x = int(W * rng.uniform(0.7, 0.85))
    size = int(rng.uniform(14, 26))
    hits = sorted(rng.uniform([0.8, seconds / 2 + 0.5], [seconds / 2 - 0.5, seconds - 0.6]))
    colour = tuple(int(c) for c in rng.uniform(100, 255, 3))
    back = _texture(rng)
    frames = np.empty((n, H, W, 3), np.uint8)
    for f in range(n):
        t = f / FPS
        image = back.copy()
        cv2.rectangle(image, (wall_x, 0), (W, H), (150, 150, 160), -1)
        right = wall_x
        for i, hit in enumerate(hits):  # accelerating towards each hit from 0.6 s before, resting after
            start = hits[i - 1] + 0.4 if i else 0.0
            if start <= t <= hit:
                share = max(0.0, (t - max(start, hit - 0.6)) / 0.6) if t >= hit - 0.6 else 0.0
                right = int(20 + size + share**2 * (wall_x - 20 - size))
                break
            if hit < t <= hit + 0.4:
                right = wall_x
                break
        else:
            right = 20 + size
        y0 = H // 2 - size // 2
        cv2.rectangle(image, (right - size, y0), (right, y0 + size), colour, -1)
        frames[f] = image
    return frames, list(hits), f"{CLASS_WORDS['impact']}: a block slams into a wall"


def _hammer(rng: np.random.Generator, seconds: float) -> tuple[np.ndarray, list[float], str]:
    """A hammer swinging about a pivot, striking a plate at a steady beat of 0.9–1.4 s."""
    n = int(seconds * FPS)
    period = rng.uniform(0.9, 1.4)
    first = rng.uniform(0.5, 1.0)
    strikes = list(np.arange(first, seconds - 0.3, period))
    pivot = (int(W * 0.3), int(H * 0.2))
    length, rest, lift = H * 0.6, math.pi / 3, math.pi / 2.5  # the head rests on the plate at 60° down
    plate_y = int(pivot[1] + length * math.sin(rest)) + 6
    back = _texture(rng)
    frames = np.empty((n, H, W, 3), np.uint8)
    for f in range(n):
        t = f / FPS
        if t < first:  # raised before the first strike, falling onto it
            angle = lift * (1 - (t / first) ** 2)
        else:  # back up and down again, accelerating into each strike
            phase = ((t - first) % period) / period
            angle = lift * math.sin(math.pi * phase) ** 2
        theta = rest - angle
        head = (int(pivot[0] + length * math.cos(theta)), int(pivot[1] + length * math.sin(theta)))
        image = back.copy()
        cv2.rectangle(image, (int(pivot[0] + length * math.cos(rest)) - 20, plate_y), (W, H), (180, 180, 190), -1)
        cv2.line(image, pivot, head, (160, 120, 80), 4)
        cv2.rectangle(image, (head[0] - 8, head[1] - 6), (head[0] + 8, head[1] + 6), (60, 60, 70), -1)
        frames[f] = image
    return frames, strikes, f"{CLASS_WORDS['impact']}: a hammer strikes a metal plate"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--media", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "media")
    ap.add_argument("--clips", type=int, default=18)
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--seed", type=int, default=99)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    bank = SoundBank(args.media, RATE)
    sounds = bank.sounds("impact", "heldout", "sfx/perc_impact2.flac")
    makers = (_drop, _slam, _hammer)
    for i in range(args.clips):
        rng = np.random.default_rng(args.seed * 1000 + i)
        frames, events, caption = makers[i % len(makers)](rng, args.seconds)
        audio = np.zeros((2, int(args.seconds * RATE)), np.float32)
        for t in events:
            s = sounds[0] * rng.uniform(0.6, 1.0)
            at = int(round(t * RATE))
            end = min(audio.shape[1], at + s.shape[1])
            audio[:, at:end] += s[:, : end - at]
        audio *= 10 ** (-3 / 20) / max(1e-6, float(np.abs(audio).max()))
        audio += rng.normal(0, 3e-4, audio.shape).astype(np.float32)  # a faint room tone
        cid = f"o{i:03d}"
        _write_video(args.out / f"{cid}.mp4", frames, FPS)
        _write_wav16(args.out / f"{cid}.wav", audio, RATE)
        meta = {
            "caption": caption,
            "sound_class": "impact",
            "events": [
                {"t": float(t), "kind": "impact", "visual": makers[i % len(makers)].__name__[1:]} for t in events
            ],
        }
        (args.out / f"{cid}.json").write_text(json.dumps(meta, indent=1) + "\n")
        print(f"{cid}: {meta['events'][0]['visual']}, {len(events)} events")


if __name__ == "__main__":
    main()
