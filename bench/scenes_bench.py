"""Hard-cut detection benchmark: our scene detector against PySceneDetect and against decoding alone.

Clips: the shared real clips (../shared/media/video next to the repo, ground truth from
../shared/media/MANIFEST.json), bikes.mp4 made into what fooled the first detector (letterbox with
drifting bars, monochrome at half contrast, film grain, interlaced PAL MPEG-2 in transport stream;
its cuts unchanged) and synthetic clips encoded here from ffmpeg's lavfi sources with
known cuts (H.264 at 23.976, 25 and 29.97 fps in 720p and 1080p, VP9 and MPEG-4 part 2 at 25 fps
in 720p, and a variable-frame-rate H.264 clip whose shots run at 24, 30, 12 and 29.97 fps), and
flicker that is no cut (audiox_core/video/flicker.py's recipes, 320x180 at 25 fps: flames, a strobe,
lightning and a blinking sign, each one shot, and two clips with a hard cut between flickering shots).

Per clip it runs our detector three ways (detect_scenes on the path, in this process: the default,
which skims where skim.pays says so, the "default pass" column says why not elsewhere; every frame
decoded; the skim wherever the codec can), PySceneDetect 0.7's ContentDetector and AdaptiveDetector
(defaults), and decode-only references (ffmpeg decoding every frame to the null muxer, ffmpeg decoding
only the reference frames without the loop filter, an OpenCV VideoCapture grab() loop). It prints one
markdown table row per clip: precision / recall / F1 of the detected hard cuts, wall seconds, and our
time as a ratio of the others', with the targets marked; then the misses and extra cuts, a summary
line and a table per clip class (hard cuts, fades, stills and single shots, busy motion, interlaced,
letterboxed), which the targets hold on. A detection matches a true cut when their times differ by
at most one frame duration (in a variable-frame-rate clip, the shorter of the two frames around the
cut); each true cut matches at most one detection.

Usage:
    .venv/bin/python bench/scenes_bench.py [--only NAME_SUBSTRING] [--skip-synthetic]
        [--skip-shared] [--repeat N] [--keep DIR] [--json OUT]

--repeat N runs every method N times, in rounds (side by side), and keeps each one's fastest; --keep DIR encodes the synthetic clips
into DIR and leaves them there (default: a temporary folder, deleted at the end).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
from scenedetect import AdaptiveDetector, ContentDetector, SceneManager, open_video

from audiox_core.video.ffmpeg import binary, run
from audiox_core.video.lavfi_reel import SOURCES
from audiox_core.video.probe import MediaInfo, probe
from audiox_core.video.scenes import DetectorSettings, detect_scenes
from audiox_core.video.skim import why_not

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "media"
SLACK_S = 1e-6  # added to the one-frame tolerance
F1_TARGET = 1.0
CONTENT_TARGET = 0.7  # ours / ContentDetector wall time, per clip class (geometric mean)
HD_HEIGHT = 720
DECODE_TARGET = 1.1  # ours / ffmpeg decoding wall time, per clip class (geometric mean)
# What each bench clip is (by file-name prefix, first match): the classes the targets hold on.
CLASSES = (
    ("fades", ("fades.", "delayed_start.")),
    ("stills and single shots", ("counter.", "creative_common.", "bigbuckbunny_5.1.")),
    ("busy motion: grain and flicker", ("bikes_grain.", "flicker_")),
    ("interlaced", ("bikes_interlaced",)),
    ("letterboxed", ("bikes_letterbox",)),
    ("hard cuts", ("",)),
)
TIMESCALE = 90000  # time base of the variable-frame-rate clip: every frame duration is exact in it
SHOT_SECONDS = (3.0, 2.5, 2.0, 3.5, 2.0)
SCORED = ("ours", "full", "skim", "content", "adaptive")
LABELS = {
    "ours": "ours",
    "full": "ours decoding every frame",
    "skim": "ours with the skim",
    "content": "ContentDetector",
    "adaptive": "AdaptiveDetector",
    "ffmpeg": "ffmpeg decode",
    "cv2": "cv2 grab",
}
CODECS: dict[str, tuple[str, tuple[str, ...]]] = {
    "h264": ("mp4", ("-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p")),
    "vp9": (
        "webm",
        ("-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-row-mt", "1", "-crf", "32", "-b:v", "0"),
    ),
    "mpeg4": ("avi", ("-c:v", "mpeg4", "-q:v", "3")),
}


@dataclass(frozen=True)
class Cut:
    """A true cut: when the new shot starts and how far from that a detection may be."""

    t: float  # seconds since the first frame
    tol: float  # seconds


@dataclass(frozen=True)
class Clip:
    name: str
    path: Path
    origin: str  # "shared" or "synthetic"
    truth: tuple[Cut, ...] | None  # None: no ground truth
    note: str = ""


@dataclass(frozen=True)
class Detected:
    times: tuple[float, ...] = ()
    frames: tuple[int, ...] = ()


@dataclass(frozen=True)
class Score:
    precision: float
    recall: float
    f1: float
    missed: tuple[float, ...]  # true cuts that no detection matched, seconds
    extra: tuple[float, ...]  # detections that matched no true cut, seconds


@dataclass(frozen=True)
class Timing:
    """One method on one clip: the fastest wall time over the repeats, what it found, how well."""

    seconds: float
    detected: Detected
    score: Score | None = None


@dataclass
class ClipResult:
    clip: Clip
    width: int
    height: int
    fps: float
    skim: str  # "yes", or why the codec takes the full pass
    runs: dict[str, Timing] = field(default_factory=dict)

    def ratio(self, other: str) -> float:
        return self.runs["ours"].seconds / self.runs[other].seconds

    def skim_ratio(self, other: str) -> float:
        return self.runs["skim"].seconds / self.runs[other].seconds

    @property
    def kind(self) -> str:
        return clip_class(self.clip.name)


def clip_class(name: str) -> str:
    return next(kind for kind, prefixes in CLASSES if any(name.startswith(p) for p in prefixes))


@dataclass(frozen=True)
class Shot:
    frames: int
    rate: Fraction  # frames per second, exact (24000/1001, not 23.976)


@dataclass(frozen=True)
class Synthetic:
    """A synthetic clip to encode: shots cycling through SOURCES; rates that differ make it VFR."""

    name: str
    codec: str
    size: tuple[int, int]
    shots: tuple[Shot, ...]

    @property
    def file_name(self) -> str:
        return f"{self.name}.{CODECS[self.codec][0]}"

    @property
    def vfr(self) -> bool:
        return len({s.rate for s in self.shots}) > 1

    def truth(self) -> tuple[Cut, ...]:
        """Cut times from the shot durations; the tolerance is the shorter frame around the cut."""
        cuts, t = [], Fraction(0)
        for before, after in zip(self.shots, self.shots[1:]):
            t += before.frames / before.rate
            cuts.append(Cut(float(t), float(min(1 / before.rate, 1 / after.rate))))
        return tuple(cuts)


def _rate(r: Fraction) -> str:
    return f"{r.numerator}/{r.denominator}"


def cfr_shots(rate: Fraction) -> tuple[Shot, ...]:
    return tuple(Shot(round(s * rate), rate) for s in SHOT_SECONDS)


def synthetic_specs() -> list[Synthetic]:
    ntsc_film, pal, ntsc = Fraction(24000, 1001), Fraction(25), Fraction(30000, 1001)
    specs = [
        Synthetic(f"syn_h264_{h}p_{float(rate):.5g}", "h264", (w, h), cfr_shots(rate))
        for w, h in ((1280, 720), (1920, 1080))
        for rate in (ntsc_film, pal, ntsc)
    ]
    vfr = (
        Shot(72, Fraction(24)),
        Shot(75, Fraction(30)),
        Shot(36, Fraction(12)),
        Shot(60, ntsc),
        Shot(48, Fraction(24)),
    )
    return specs + [
        Synthetic("syn_vp9_720p_25", "vp9", (1280, 720), cfr_shots(pal)),
        Synthetic("syn_mpeg4_720p_25", "mpeg4", (1280, 720), cfr_shots(pal)),
        Synthetic("syn_h264_720p_vfr", "h264", (1280, 720), vfr),  # mp4: -video_track_timescale below
    ]


def encode(spec: Synthetic, folder: Path) -> Clip:
    """Encode the shots joined by hard cuts; a VFR clip keeps every segment's own frame timing."""
    path = folder / spec.file_name
    w, h = spec.size
    args = ["-v", "error", "-y"]
    for i, shot in enumerate(spec.shots):
        source = SOURCES[i % len(SOURCES)].format(w=w, h=h, fps=_rate(shot.rate))
        args += ["-f", "lavfi", "-i", f"{source},trim=end_frame={shot.frames}"]
    n = len(spec.shots)
    graph = "".join(f"[{i}:v]format=yuv420p,settb=1/{TIMESCALE},setpts=PTS-STARTPTS[v{i}];" for i in range(n))
    graph += "".join(f"[v{i}]" for i in range(n)) + f"concat=n={n}:v=1:a=0[v]"
    timing = (
        ["-fps_mode", "vfr", "-video_track_timescale", str(TIMESCALE)]
        if spec.vfr
        else ["-r", _rate(spec.shots[0].rate)]
    )
    codec_args = CODECS[spec.codec][1]
    run(
        "ffmpeg",
        [*args, "-filter_complex", graph, "-map", "[v]", *codec_args, "-g", "60", *timing, str(path)],
        subject=path,
        what="encoding a synthetic clip failed",
    )
    clip = Clip(spec.file_name, path, "synthetic", spec.truth())
    return _check_vfr(clip, spec) if spec.vfr else clip


def _check_vfr(clip: Clip, spec: Synthetic) -> Clip:
    """Check with ffprobe that frame durations vary and the cuts fall where the truth says."""
    out = run(
        "ffprobe",
        ["-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time", "-of", "csv=p=0", str(clip.path)],
        subject=clip.path,
        what="ffprobe failed",
    ).stdout
    pts = sorted(float(x) for x in out.split())
    steps = sorted({round(b - a, 4) for a, b in zip(pts, pts[1:])})
    if len(steps) < 2:
        raise RuntimeError(f"{clip.name}: frame durations do not vary ({steps})")
    starts = [sum(s.frames for s in spec.shots[:k]) for k in range(1, len(spec.shots))]
    for cut, k in zip(clip.truth or (), starts):
        if abs(pts[k] - pts[0] - cut.t) > 1e-3:
            raise RuntimeError(f"{clip.name}: frame {k} at {pts[k] - pts[0]:.4f} s, expected the cut at {cut.t:.4f} s")
    return Clip(
        clip.name,
        clip.path,
        clip.origin,
        clip.truth,
        "frame durations " + ", ".join(f"{1000 * s:.1f}" for s in steps) + " ms",
    )


def shared_clips(root: Path) -> list[Clip]:
    """The manifest's videos, truth frame indices turned into seconds at the clip's frame rate."""
    if not (root / "video").is_dir():
        print(f"shared clips: {root / 'video'} is missing; skipping them")
        return []
    clips = []
    for key, entry in json.loads((root / "MANIFEST.json").read_text())["videos"].items():
        if not (root / key).is_file():
            print(f"shared clips: {root / key} is missing; skipping it")
            continue
        fps = Fraction(entry["fps"])
        truth = None if entry.get("cuts") is None else tuple(Cut(float(f / fps), float(1 / fps)) for f in entry["cuts"])
        clips.append(Clip(Path(key).name, root / key, "shared", truth))
    return clips


VARIANTS = {  # real footage made into what fooled the first detector (cuts as in bikes.mp4)
    "letterbox_drift": (
        "mp4",
        (
            "-vf",
            "scale=640:268,pad=640:360:0:46:black,"
            "drawbox=x=0:y=0:w=iw:h=46:color=0x030503:t=fill:enable='lt(mod(n\\,50)\\,25)',"
            "drawbox=x=0:y=314:w=iw:h=46:color=0x030503:t=fill:enable='lt(mod(n\\,50)\\,25)'",
            *CODECS["h264"][1],
        ),
    ),
    "monochrome": ("mp4", ("-vf", "hue=s=0,eq=contrast=0.5", *CODECS["h264"][1])),
    "grain": ("mp4", ("-vf", "noise=alls=30:allf=t", *CODECS["h264"][1])),
    "interlaced_pal": (
        "ts",
        (
            "-vf",
            "fps=50,trim=start_frame=1,setpts=PTS-STARTPTS,tinterlace=mode=interleave_top,setfield=tff",
            "-c:v",
            "mpeg2video",
            "-q:v",
            "3",
            "-flags",
            "+ilme+ildct",
            "-top",
            "1",
        ),
    ),
}


def variant_clips(root: Path, folder: Path) -> list[Clip]:
    """bikes.mp4 letterboxed with drifting bars, monochrome at half contrast, grainy, and interlaced."""
    source = root / "video" / "bikes.mp4"
    if not source.is_file():
        print(f"variants: {source} is missing; skipping them")
        return []
    entry = json.loads((root / "MANIFEST.json").read_text())["videos"]["video/bikes.mp4"]
    fps = Fraction(entry["fps"])
    truth = tuple(Cut(float(f / fps), float(1 / fps)) for f in entry["cuts"])
    clips = []
    for name, (suffix, args) in VARIANTS.items():
        path = folder / f"bikes_{name}.{suffix}"
        run("ffmpeg", ["-v", "error", "-y", "-i", str(source), *args, str(path)], subject=path, what="encoding failed")
        clips.append(Clip(path.name, path, "variant", truth))
    return clips


FLICKER_CLIPS = (("flames",), ("strobe",), ("lightning",), ("sign",), ("flames", "strobe"), ("lightning", "sign"))


def flicker_clips(folder: Path, only: str = "") -> list[Clip]:
    """Flicker in one shot (no cut), and hard cuts between flickering shots (on the first shot's end)."""
    from audiox_core.video import flicker

    clips = []
    for shots in FLICKER_CLIPS:
        path = folder / f"flicker_{'_cut_'.join(shots)}.mp4"
        if only in path.name:
            truth = (Cut(flicker.FRAMES[shots[0]] / flicker.RATE, 1 / flicker.RATE),) if len(shots) > 1 else ()
            clips.append(Clip(path.name, flicker.encode(path, *shots), "flicker", truth))
    return clips


def score(detected: Sequence[float], truth: Sequence[Cut]) -> Score:
    """Each true cut takes the nearest unused detection within its tolerance; empty sets score 1."""
    unused = sorted(detected)
    missed = []
    for cut in truth:
        near = [d for d in unused if abs(d - cut.t) <= cut.tol + SLACK_S]
        if near:
            unused.remove(min(near, key=lambda d: abs(d - cut.t)))
        else:
            missed.append(cut.t)
    hits = len(truth) - len(missed)
    precision = hits / len(detected) if detected else 1.0
    recall = hits / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Score(precision, recall, f1, tuple(missed), tuple(unused))


def ours_with(settings: DetectorSettings) -> Callable[[Path], Detected]:
    def detect(path: Path) -> Detected:
        scenes = detect_scenes(path, settings)[1].scenes[1:]
        return Detected(tuple(s.start_s for s in scenes), tuple(s.start_frame for s in scenes))

    return detect


def pyscenedetect(detector: Callable[[], Any]) -> Callable[[Path], Detected]:
    def detect(path: Path) -> Detected:
        video = open_video(str(path))
        manager = SceneManager()
        manager.add_detector(detector())
        manager.detect_scenes(video)
        starts = [start for start, _ in manager.get_scene_list()[1:]]
        return Detected(tuple(float(s.seconds) for s in starts), tuple(s.frame_num for s in starts))

    return detect


def ffmpeg_decode(path: Path) -> Detected:
    subprocess.run(
        [binary("ffmpeg"), "-nostdin", "-v", "error", "-i", str(path), "-map", "0:v:0", "-f", "null", "-"], check=True
    )
    return Detected()


def ffmpeg_refs(path: Path) -> Detected:
    """The skim's floor: ffmpeg decoding only the reference frames, without the loop filter."""
    cheap = ["-skip_loop_filter", "all", "-skip_frame", "noref"]
    subprocess.run(
        [binary("ffmpeg"), "-nostdin", "-v", "error", *cheap, "-i", str(path), "-map", "0:v:0", "-f", "null", "-"],
        check=True,
    )
    return Detected()


def cv2_grab(path: Path) -> Detected:
    capture = cv2.VideoCapture(str(path))
    try:
        while capture.grab():
            pass
    finally:
        capture.release()
    return Detected()


METHODS: dict[str, Callable[[Path], Detected]] = {
    "ours": ours_with(DetectorSettings()),  # the default: the skim where skim.pays says so
    "full": ours_with(DetectorSettings(skim="never")),
    "skim": ours_with(DetectorSettings(skim="always")),
    "content": pyscenedetect(ContentDetector),
    "adaptive": pyscenedetect(AdaptiveDetector),
    "ffmpeg": ffmpeg_decode,
    "refs": ffmpeg_refs,
    "cv2": cv2_grab,
}


def path_taken(info: MediaInfo) -> str:
    """Which pass the default takes on this clip, and why."""
    reason = why_not(info)
    return "skim" if reason is None else f"full: {reason}"


def bench_clip(clip: Clip, repeat: int) -> ClipResult:
    """Every method on one clip, each round running every method once (side by side: the fastest of
    the rounds is kept); the file is read once first, so no method pays for a cold cache."""
    clip.path.read_bytes()
    info = probe(clip.path)
    video = info.video
    result = ClipResult(clip, video.width, video.height, float(video.fps), path_taken(info))
    best: dict[str, tuple[float, Detected]] = {}
    for _ in range(repeat):
        for name, method in METHODS.items():
            start = time.perf_counter()
            detected = method(clip.path)
            seconds = time.perf_counter() - start
            if name not in best or seconds < best[name][0]:
                best[name] = (seconds, detected)
    for name, (seconds, detected) in best.items():
        graded = score(detected.times, clip.truth) if name in SCORED and clip.truth is not None else None
        result.runs[name] = Timing(seconds, detected, graded)
    return result


def _mark(ok: bool | None) -> str:
    return "" if ok is None else " ✓" if ok else " ✗"


def _prf(run_: Timing, target: bool = False) -> str:
    s = run_.score
    if s is None:
        return "–"
    return f"{s.precision:.2f}/{s.recall:.2f}/{s.f1:.2f}" + _mark(s.f1 >= F1_TARGET if target else None)


def table_row(r: ClipResult) -> list[str]:
    runs = r.runs
    return [
        r.clip.name,
        r.kind,
        r.skim,
        f"{r.width}x{r.height}",
        f"{r.fps:.5g}",
        "–" if r.clip.truth is None else str(len(r.clip.truth)),
        _prf(runs["ours"], target=True),
        _prf(runs["full"], target=True),
        _prf(runs["skim"], target=True),
        _prf(runs["content"]),
        _prf(runs["adaptive"]),
        *(f"{runs[m].seconds:.3f}" for m in METHODS),
        f"{r.ratio('content'):.2f}{_mark(r.ratio('content') <= CONTENT_TARGET)}",
        f"{r.ratio('ffmpeg'):.2f}{_mark(r.ratio('ffmpeg') <= DECODE_TARGET)}",
        f"{r.runs['full'].seconds / r.runs['content'].seconds:.2f}",
        f"{r.skim_ratio('content'):.2f}",
        f"{r.runs['refs'].seconds / r.runs['content'].seconds:.2f}",
    ]


def markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(c) for c in col) for col in zip(header, *rows)]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |" for cells in (header, *rows)]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


HEADER = (
    "clip",
    "class",
    "default pass",
    "size",
    "fps",
    "cuts",
    "ours P/R/F1",
    "full P/R/F1",
    "skim P/R/F1",
    "CD P/R/F1",
    "AD P/R/F1",
    "ours s",
    "full s",
    "skim s",
    "CD s",
    "AD s",
    "ffmpeg s",
    "refs s",
    "cv2 s",
    "ours/CD",
    "ours/ffmpeg",
    "full/CD",
    "skim/CD",
    "refs/CD",
)


def _times(ts: Sequence[float]) -> str:
    return ", ".join(f"{t:.3f}" for t in ts) or "none"


def notes(results: Sequence[ClipResult]) -> list[str]:
    """One line per clip note, and per scored method that missed a cut or found an extra one."""
    lines = [f"- {r.clip.name}: {r.clip.note}" for r in results if r.clip.note]
    for r in results:
        for name in SCORED:
            s = r.runs[name].score
            if s and (s.missed or s.extra):
                lines.append(
                    f"- {r.clip.name} · {LABELS[name]}: missed [{_times(s.missed)}] s, extra [{_times(s.extra)}] s"
                )
    return lines


def _geomean(values: Sequence[float]) -> float:
    return math.exp(sum(map(math.log, values)) / len(values)) if values else math.nan


def per_class(results: Sequence[ClipResult]) -> dict[str, dict[str, Any]]:
    """Per clip class: clips, F1 = 1 count, and ours over ContentDetector and over ffmpeg decoding
    (geometric mean, and the worst clip)."""
    out = {}
    for kind, _ in CLASSES:
        rs = [r for r in results if r.kind == kind]
        if not rs:
            continue
        content, decode = [r.ratio("content") for r in rs], [r.ratio("ffmpeg") for r in rs]
        graded = [r.runs["ours"].score for r in rs if r.runs["ours"].score is not None]
        out[kind] = {
            "clips": len(rs),
            "f1_perfect": sum(s.f1 >= F1_TARGET for s in graded),
            "graded": len(graded),
            "ours_over_content": _geomean(content),
            "ours_over_content_worst": max(content),
            "ours_over_ffmpeg": _geomean(decode),
            "ours_over_ffmpeg_worst": max(decode),
            "full_over_content": _geomean([r.runs["full"].seconds / r.runs["content"].seconds for r in rs]),
        }
    return out


def summary(results: Sequence[ClipResult], elapsed: float) -> dict[str, Any]:
    scores = {m: [s for r in results if (s := r.runs[m].score) is not None] for m in SCORED}
    hd = [r for r in results if r.height >= HD_HEIGHT]
    return {
        "clips": len(results),
        "graded_clips": len(scores["ours"]),
        "f1_perfect": {m: sum(s.f1 >= F1_TARGET for s in scores[m]) for m in SCORED},
        "classes": per_class(results),
        "ours_over_content_geomean": _geomean([r.ratio("content") for r in results]),
        "ours_over_content_geomean_hd": _geomean([r.ratio("content") for r in hd]),
        "ours_over_ffmpeg_geomean": _geomean([r.ratio("ffmpeg") for r in results]),
        "skimmed_clips": sum(r.skim == "skim" for r in results),
        "elapsed_s": elapsed,
    }


def summary_lines(s: dict[str, Any]) -> list[str]:
    f1 = s["f1_perfect"]
    lines = [
        f"summary: F1 = 1.0 on {f1['ours']}/{s['graded_clips']} clips (decoding every frame {f1['full']}, "
        f"the skim everywhere {f1['skim']}, ContentDetector {f1['content']}, AdaptiveDetector {f1['adaptive']}); "
        f"the default skimmed {s['skimmed_clips']}/{s['clips']} clips; ours / ContentDetector geomean "
        f"{s['ours_over_content_geomean']:.2f}× (HD clips {s['ours_over_content_geomean_hd']:.2f}×), "
        f"ours / ffmpeg decode {s['ours_over_ffmpeg_geomean']:.2f}×; bench took {s['elapsed_s']:.0f} s",
        "",
        "| class | clips | F1 = 1 | ours/CD geomean (worst) | ours/ffmpeg geomean (worst) | full pass/CD |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for kind, c in s["classes"].items():
        ok_c, ok_d = c["ours_over_content"] <= CONTENT_TARGET, c["ours_over_ffmpeg"] <= DECODE_TARGET
        lines.append(
            f"| {kind} | {c['clips']} | {c['f1_perfect']}/{c['graded']} | {c['ours_over_content']:.2f}{_mark(ok_c)} "
            f"({c['ours_over_content_worst']:.2f}) | {c['ours_over_ffmpeg']:.2f}{_mark(ok_d)} "
            f"({c['ours_over_ffmpeg_worst']:.2f}) | {c['full_over_content']:.2f} |"
        )
    return lines


def report(results: Sequence[ClipResult], elapsed: float, json_out: Path | None) -> None:
    print(
        f"targets: ours F1 = {F1_TARGET} on every clip with ground truth; per clip class, ours ≤ {CONTENT_TARGET}× "
        f"ContentDetector and ≤ {DECODE_TARGET}× ffmpeg decode (✓/✗ next to the figures)\n"
    )
    print(markdown(HEADER, [table_row(r) for r in results]))
    if lines := notes(results):
        print("\n" + "\n".join(lines))
    figures = summary(results, elapsed)
    print("\n" + "\n".join(summary_lines(figures)))
    if json_out:
        clips = [
            {**asdict(r), "class": r.kind, "ratios": {m: r.ratio(m) for m in METHODS if m != "ours"}} for r in results
        ]
        targets = {"f1": F1_TARGET, "ours_over_content": CONTENT_TARGET, "ours_over_ffmpeg": DECODE_TARGET}
        json_out.write_text(json.dumps({"targets": targets, "summary": figures, "clips": clips}, indent=1, default=str))


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", metavar="NAME_SUBSTRING", help="only clips whose file name contains this")
    p.add_argument("--skip-synthetic", action="store_true")
    p.add_argument("--skip-shared", action="store_true")
    p.add_argument("--repeat", type=int, default=1, help="keep the fastest of N runs per method")
    p.add_argument("--keep", type=Path, metavar="DIR", help="encode the synthetic clips here and keep them")
    p.add_argument("--json", type=Path, metavar="OUT", help="write all figures as JSON")
    args = p.parse_args()
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    return args


def main() -> None:
    args = parse_args()
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=PendingDeprecationWarning)
    only = args.only or ""
    started = time.perf_counter()
    clips = [] if args.skip_shared else [c for c in shared_clips(SHARED) if only in c.name]
    specs = [] if args.skip_synthetic else [s for s in synthetic_specs() if only in s.file_name]
    folder_context = nullcontext(str(args.keep)) if args.keep else tempfile.TemporaryDirectory(prefix="scenes_bench_")
    with folder_context as folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        clips += [] if args.skip_shared else [c for c in variant_clips(SHARED, Path(folder)) if only in c.name]
        clips += [encode(spec, Path(folder)) for spec in specs]
        clips += [] if args.skip_synthetic else flicker_clips(Path(folder), only)
        results = [bench_clip(clip, args.repeat) for clip in clips]
    report(results, time.perf_counter() - started, args.json)


if __name__ == "__main__":
    main()
