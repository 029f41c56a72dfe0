"""Writing the DAW timelines of a two-hour reel: soundtrack.otio and soundtrack.aaf (OTIO AAF adapter,
audio embedded), and the drift of the last cue. Target (issue 27): both files in < 10 s.

    .venv/bin/python bench/daw_bench.py [--hours 2] [--scene-s 10] [--cue-s 0.25] [--fps 24000/1001]

The reel is cut every ~10 s (tests/daw_reels.py): a Foley cue at every cut and a music cue over every
four scenes, crossfading as the mix crossfades them. The OTIO file is written for every cue; the
AAF embeds each cue's samples, so its Foley cues are ``--cue-s`` long (a full two-hour cue list
would be 4 GB of WAVs) and its cost per clip and per MB of essence is printed beside the total.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from daw_reels import long_reel, only, write_cue_files  # noqa: E402

from audiox_core.reel.aaf_export import write_aaf  # noqa: E402
from audiox_core.reel.otio_timeline import timeline  # noqa: E402
from audiox_core.sound.audio import MIX_RATE  # noqa: E402


def cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hours", type=float, default=2.0)
    p.add_argument("--scene-s", type=float, default=10.0)
    p.add_argument("--cue-s", type=float, default=0.25)
    p.add_argument("--fps", default="24000/1001")
    args = p.parse_args()
    fps = Fraction(args.fps)
    print(f"CPU: {cpu()}; {args.hours:g} h at {float(fps):.3f} fps, a cut every ~{args.scene_s:g} s")

    dense = long_reel(fps, args.hours, args.scene_s, cue_s=None)
    started = time.perf_counter()
    text = otio.adapters.write_to_string(timeline(dense), "otio_json")
    otio_s = time.perf_counter() - started
    back = otio.adapters.read_from_string(text, "otio_json")
    worst = 0.0
    for track in back.tracks:
        for i, item in enumerate(track):
            if isinstance(item, otio.schema.Clip) and "audiox" in item.metadata:
                origin = track.range_of_child_at_index(i).start_time - item.source_range.start_time
                worst = max(worst, abs(origin.rescaled_to(MIX_RATE).value - item.metadata["audiox"]["start_sample"]))
    print(
        f"soundtrack.otio: {len(dense.cues)} cues, {len(text) / 1e6:.1f} MB in {otio_s:.2f} s; "
        f"worst cue position after reading it back: {worst:.2e} samples"
    )

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        short = long_reel(fps, args.hours, args.scene_s, cue_s=args.cue_s)
        foley = only(short, ("foley",))
        write_cue_files(foley, folder)
        essence_mb = sum(f.stat().st_size for f in (folder / "cues").iterdir()) / 1e6
        started = time.perf_counter()
        write_aaf(foley, folder, folder / "soundtrack.aaf")
        aaf_s = time.perf_counter() - started
        clips = len(foley.cues)
        print(
            f"soundtrack.aaf: {clips} clips with fades, {essence_mb:.0f} MB of essence embedded, in {aaf_s:.1f} s "
            f"({1000 * aaf_s / clips:.0f} ms per clip)"
        )
        print(f"both files: {otio_s + aaf_s:.1f} s (target < 10 s)")


if __name__ == "__main__":
    main()
