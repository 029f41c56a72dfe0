"""The nightly batch at scale: N short clips in a real moto_server bucket through the ``nightly`` flow
with the tiny model on the CPU. Prints, per batch size: succeeded/failed, wall time, seconds per
clip, peak memory, and whether memory stays flat as the batch grows.

    .venv/bin/python bench/batch_bench.py [--clips 25,100] [--max-parallel 2] [--steps 2] [--seconds 1.6]

The clips are made once by ffmpeg (two shots each) and each batch size gets its own bucket, in which
every clip has its own key (two of them share a file name in different folders: ``dayA/reel.mp4``,
``dayB/reel.mp4``). Each clip is the same picture remuxed with its own metadata: distinct bytes, so
no clip reuses another's cached cues (their keys hold the source's sha256).

Each batch size runs in a fresh subprocess with its own AUDIOX_HOME (SQLite) and its own temporary
local Prefect API (PREFECT_HOME), so peaks do not mix; its wall time starts once that API is up.
Memory: the process's peak RSS (ru_maxrss), the highest summed PSS of its live descendants (the
temporary Prefect API, ffmpeg, mix workers; sampled); and RSS as the batch grows: a sampler thread
reads VmRSS every 0.5 s together with the number of finished runs in the provenance database, so
"RSS after reel k" is the first sample taken once k runs had finished (other reels are in flight
then). Flat memory means a slope near 0 MiB per 100 reels between reel ⌈N/4⌉ and reel N (25 and 100
in a 100-clip batch); over a handful of reels the slope is noise. Counts come from the flow's
returned dict, never from output names.

One clip takes 6–10 s of batch wall time on 2 cores with max_parallel 2 (the tiny model's sampling
most of it), so the default 25 + 100 run takes about 15–25 minutes, each batch's Prefect API start
and the clips' making included.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

from mix_bench import cpu

FPS = Fraction(25)
PREFIX = "reels/"
SAMPLE_S = 0.5


@dataclass(frozen=True)
class BatchFigures:
    """What one batch size measured, in its own process."""

    clips: int  # listed by the flow
    succeeded: int
    failed: int
    prefect_start_s: float
    wall_s: float
    peak_rss_mib: float
    descendants_peak_pss_mib: float  # sampled, summed over the live descendants
    rss_after_reel: list[float]  # MiB, index k-1: the first sample once k runs had finished
    errors: list[str]

    @property
    def quarter(self) -> int:
        """The early reel flatness is measured from (25 in a 100-clip batch)."""
        return max(1, math.ceil(self.clips / 4))

    def rss_at(self, reel: int) -> float | None:
        return self.rss_after_reel[reel - 1] if len(self.rss_after_reel) >= reel else None

    def slope_mib_per_100(self) -> float | None:
        """RSS growth between reel ⌈N/4⌉ and reel N, per 100 reels."""
        early, late = self.rss_at(self.quarter), self.rss_at(self.clips)
        if early is None or late is None or self.clips == self.quarter:
            return None
        return (late - early) / (self.clips - self.quarter) * 100


def status_fields(pid: int | str) -> tuple[int, float]:
    """A process's parent pid and resident set size in MiB (0 for kernel threads), from /proc."""
    ppid, rss_kib = 0, 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("PPid:"):
            ppid = int(line.split()[1])
        elif line.startswith("VmRSS:"):
            rss_kib = int(line.split()[1])
    return ppid, rss_kib / 1024


def pss_mib(pid: int) -> float:
    """A process's proportional set size in MiB: its RSS with each shared page divided among its
    sharers, so forked workers' pages shared with this process are not counted twice."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return 0.0


def descendants_pss_mib(root: int) -> float:
    """The summed PSS of every live descendant of ``root`` (the temporary Prefect API, ffmpeg, mix
    workers). Read from /proc because ru_maxrss says nothing about them: a child spawned from this
    process keeps the parent's high-water mark across exec, so RUSAGE_CHILDREN reports the parent."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = status_fields(entry.name)[0]
            except (OSError, ValueError):  # it ended while being read
                continue
    below, frontier = set(), [root]
    while frontier:
        parent = frontier.pop()
        found = [pid for pid, ppid in parents.items() if ppid == parent and pid not in below]
        below.update(found)
        frontier += found
    total = 0.0
    for pid in below:
        try:
            total += pss_mib(pid)
        except (OSError, ValueError):
            continue
    return total


def finished_runs(db_url: str) -> int:
    """Runs of this process's provenance database that are no longer running."""
    from sqlalchemy import func, select

    from db.models import Run
    from db.session import sessions

    with sessions(db_url)() as session:
        return session.scalar(select(func.count()).select_from(Run).where(Run.status != "running")) or 0


class RssSampler(threading.Thread):
    """VmRSS every ``SAMPLE_S`` seconds, kept as the RSS after each finished reel, and the largest
    summed PSS of the process's descendants."""

    def __init__(self, db_url: str) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.db_url = db_url
        self.after_reel: list[float] = []
        self.descendants_peak_mib = 0.0
        self._stopping = threading.Event()

    def sample(self) -> None:
        rss, done = status_fields("self")[1], finished_runs(self.db_url)
        self.descendants_peak_mib = max(self.descendants_peak_mib, descendants_pss_mib(os.getpid()))
        self.after_reel += [round(rss, 1)] * (done - len(self.after_reel))

    def run(self) -> None:
        while not self._stopping.wait(SAMPLE_S):
            self.sample()

    def stop(self) -> None:
        self._stopping.set()
        self.join()
        self.sample()


def run_batch(bucket: str, steps: int, max_parallel: int) -> BatchFigures:
    """The nightly flow over every clip in ``bucket`` (this process's AUDIOX_HOME and Prefect API)."""
    from prefect.client.orchestration import get_client

    from audiox_core.workspace import studio_home
    from db.session import database_url
    from flows.nightly import nightly

    start = time.perf_counter()
    with get_client(sync_client=True) as client:  # starts the temporary local API
        client.api_healthcheck()
    prefect_start_s = time.perf_counter() - start
    sampler = RssSampler(database_url(studio_home()))
    sampler.start()
    start = time.perf_counter()
    settings = {"model": "tiny", "device": "cpu", "steps": steps}
    result = nightly(bucket, PREFIX, f"s3://{bucket}/soundtracks", settings, max_parallel)
    wall_s = time.perf_counter() - start
    sampler.stop()
    return BatchFigures(
        clips=result["listed"],
        succeeded=result["succeeded"],
        failed=result["failed"],
        prefect_start_s=round(prefect_start_s, 1),
        wall_s=round(wall_s, 1),
        peak_rss_mib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        descendants_peak_pss_mib=round(sampler.descendants_peak_mib, 1),
        rss_after_reel=sampler.after_reel,
        errors=[r["error"] for r in result["runs"] if r["status"] == "failed"],
    )


def clip_keys(count: int) -> list[str]:
    """Distinct keys, the first two with the same file name in different folders."""
    named = [f"{PREFIX}dayA/reel.mp4", f"{PREFIX}dayB/reel.mp4"]
    return [named[i] if i < 2 else f"{PREFIX}day{i // 25:02d}/clip{i:03d}.mp4" for i in range(count)]


def make_clips(folder: Path, count: int, seconds: float) -> list[Path]:
    """``count`` clips of two shots, one picture with distinct bytes each (its own metadata)."""
    from audiox_core.video.ffmpeg import run
    from audiox_core.video.lavfi_reel import make_reel

    frames = max(2, round(seconds * FPS))
    base = make_reel(folder / "base.mp4", shot_frames=(frames // 2, frames - frames // 2), fps=FPS, size=(320, 180))
    clips = []
    for i in range(count):
        clips.append(folder / f"clip{i:03d}.mp4")
        args = ["-v", "error", "-y", "-i", str(base.path), "-c", "copy", "-metadata", f"comment=bench clip {i}"]
        run("ffmpeg", [*args, str(clips[-1])], subject=clips[-1], what="remuxing a bench clip failed")
    return clips


@contextmanager
def moto_server() -> Iterator[dict[str, str]]:
    """moto_server on a free 127.0.0.1 port; yields the environment that points boto3 at it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
    proc = subprocess.Popen(
        [server, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url, timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"moto_server did not start on {url}") from None
                time.sleep(0.2)
        yield {
            "AWS_ENDPOINT_URL": url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def child_env(work: Path, aws: dict[str, str]) -> dict[str, str]:
    """A batch process's environment: its own data folder and temporary Prefect API, offline."""
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "AUDIOX_DB_URL")}
    return {
        **env,
        **aws,
        "AUDIOX_HOME": str(work / "home"),
        "PREFECT_HOME": str(work / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    }


def measure(clips: list[Path], aws: dict[str, str], work: Path, args: argparse.Namespace) -> BatchFigures:
    """Upload ``clips`` to a bucket of their own and run the batch in a fresh process (in ``work``)."""
    import boto3

    bucket = f"bench-{work.name}"
    s3 = boto3.client(
        "s3",
        endpoint_url=aws["AWS_ENDPOINT_URL"],
        region_name=aws["AWS_DEFAULT_REGION"],
        aws_access_key_id=aws["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=aws["AWS_SECRET_ACCESS_KEY"],
    )
    s3.create_bucket(Bucket=bucket)
    for clip, key in zip(clips, clip_keys(len(clips))):
        s3.upload_file(str(clip), bucket, key)
    work.mkdir()
    log = work / "batch.log"
    cmd = [sys.executable, __file__, "--run-batch", bucket, "--steps", str(args.steps)]
    with log.open("w") as out:
        done = subprocess.run(
            [*cmd, "--max-parallel", str(args.max_parallel)],
            env=child_env(work, aws),
            stdout=subprocess.PIPE,
            stderr=out,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        sys.exit(f"the {len(clips)}-clip batch failed (exit {done.returncode}):\n{log.read_text()[-3000:]}")
    return BatchFigures(**json.loads(done.stdout.strip().splitlines()[-1]))


def report(figures: list[BatchFigures], args: argparse.Namespace) -> None:
    print(
        f"on {cpu()}: nightly flow, tiny model on the CPU, {args.steps} steps, max_parallel {args.max_parallel}, "
        f"clips of {args.seconds:g} s (2 shots, 320×180 at {FPS} fps)"
    )
    print(
        f"{'clips':>5} {'ok':>4} {'fail':>4} {'wall s':>8} {'s/clip':>7} {'API s':>6} {'peak MiB':>9} "
        f"{'desc. MiB':>9} {'RSS@1':>7} {'reel q':>6} {'RSS@q':>7} {'RSS@N':>7} {'MiB/100 reels':>13}"
    )
    for f in figures:
        slope = f.slope_mib_per_100()
        print(
            f"{f.clips:5d} {f.succeeded:4d} {f.failed:4d} {f.wall_s:8.1f} {f.wall_s / max(1, f.clips):7.2f} "
            f"{f.prefect_start_s:6.1f} {f.peak_rss_mib:9.0f} {f.descendants_peak_pss_mib:9.0f} "
            f"{_mib(f.rss_at(1))} {f.quarter:6d} {_mib(f.rss_at(f.quarter))} {_mib(f.rss_at(f.clips))} "
            f"{'—' if slope is None else f'{slope:+.1f}':>13}"
        )
    for f in figures:
        for error in f.errors[:3]:
            print(f"  {f.clips}-clip batch failure: {error}")
    print(
        "RSS@k: resident set after the k-th finished reel (q = ⌈N/4⌉); peak: the batch process's ru_maxrss; "
        "desc.: its live descendants' summed PSS at the highest sample (the temporary Prefect API among them)"
    )


def _mib(value: float | None) -> str:
    return f"{'—' if value is None else f'{value:.0f}':>7}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", default="25,100", help="batch sizes, each in a fresh process (default 25,100)")
    p.add_argument("--max-parallel", type=int, default=2)
    p.add_argument("--steps", type=int, default=2, help="sampling steps per cue")
    p.add_argument("--seconds", type=float, default=1.6, help="clip length (two shots)")
    p.add_argument("--json", help="also write the figures to this JSON file")
    p.add_argument("--keep", help="work here (clips, each batch's data folder and log) instead of a temporary folder")
    p.add_argument("--run-batch", metavar="BUCKET", help=argparse.SUPPRESS)  # the per-size child process
    args = p.parse_args()
    if args.run_batch:
        print(json.dumps(asdict(run_batch(args.run_batch, args.steps, args.max_parallel))))
        return
    sizes = [int(n) for n in args.clips.split(",")]
    work = Path(args.keep or tempfile.mkdtemp(prefix="batch-bench-"))
    try:
        with moto_server() as aws:
            (work / "clips").mkdir(parents=True)
            clips = make_clips(work / "clips", max(sizes), args.seconds)
            figures = [measure(clips[:n], aws, work / f"batch{i}-{n}", args) for i, n in enumerate(sizes)]
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    report(figures, args)
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(f) for f in figures], indent=2))


if __name__ == "__main__":
    main()
