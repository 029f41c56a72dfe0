"""``audiox-studio``: the command line on top of the flows.

Errors print one line naming the input and the reason, and exit with status 1; ``--debug``
shows the traceback and Prefect's full logs.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

DEFAULT_OUT = "out"
_STARTUP = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"


def _settings_from(args: argparse.Namespace) -> dict[str, Any]:
    """The flow's settings dict: only the options given (each option's dest is its settings key)."""
    from audiox_core.reel.settings import SETTING_PATHS

    return {key: value for key in SETTING_PATHS if (value := getattr(args, key, None)) is not None}


def _print_outputs(result: dict[str, Any]) -> None:
    from audiox_core.producer_text import terminal_text

    print(terminal_text(f"Soundtrack for {result['reel']} — model: {result['model']}"))
    if result["out_dir"].startswith("s3://"):
        print(
            terminal_text(
                f"  {result['out_dir']}/ (this version's files; current.json beside versions/ names the current one)"
            )
        )
    else:
        _print_local_outputs(Path(result["out_dir"]))
    if result.get("review_page"):
        where = "" if result["out_dir"].startswith("s3://") else "   (served by: .venv/bin/audiox-studio serve)"
        print(terminal_text(f"Review page: {result['review_page']}{where}"))
    api = os.environ.get("PREFECT_API_URL")
    ui = api.removesuffix("/api") if api else "http://127.0.0.1:4200"
    print(f"Review artifact '{result['review_artifact']}' and the run's tasks are in the Prefect UI:")
    if not api:
        print("  start it with: .venv/bin/prefect server start   (it reads the same local database)")
    print(f"  then open {ui}/runs/flow-run/{result['flow_run_id']}")


def _print_local_outputs(out: Path) -> None:
    from audiox_core.producer_text import terminal_text

    for name in (
        "review.html",
        "soundtrack.mp4",
        "soundtrack.mov",
        "soundtrack.mkv",
        "mix.wav",
        "stems/m_and_e.wav",
        "loudness.json",
        "stems/dialogue.wav",
        "stems/foley.wav",
        "stems/music.wav",
        "waveform.png",
        "spectrogram.png",
        "scenes.json",
        "scenes.edl",
        "soundtrack.otio",
        "soundtrack.aaf",
        "cues.yaml",
        "music_cues.csv",
        "provenance.json",
    ):
        if (out / name).exists():
            print(terminal_text(f"  {out / name}"))
    print(terminal_text(f"  {out / 'cues'}/ (one WAV per generated cue)"))


def _checked_database() -> str:
    """The provenance database's URL, once a connection to it opens (one-line InputError otherwise)."""
    from audiox_core.reel.preflight import check_database
    from audiox_core.workspace import studio_home
    from db.session import connection_problem, database_url

    url = database_url(studio_home())
    check_database(url, connection_problem)
    return url


def _record_failed_run(db_url: str, source_uri: str, out_uri: str, settings: dict[str, Any], error: str) -> None:
    """A failed run row, under the cleaned URIs, for a run refused before its flow could start."""
    from audiox_core.lifecycle import process_tag
    from audiox_core.store.uri import public_uri
    from audiox_core.workspace import code_version
    from db import repository

    run_id = repository.start_run(
        db_url,
        source_uri=public_uri(source_uri),
        out_uri=public_uri(out_uri),
        settings=settings,
        code_version=code_version(),
        flow_run_id=None,
        trigger="manual",
        process=process_tag(),
    )
    repository.finish_run(db_url, run_id, error=error)


def _soundtrack(
    db_url: str, source_uri: str, out_uri: str, settings: dict[str, Any], cues: str | None = None
) -> dict[str, Any]:
    """The soundtrack flow, after refusing credential-bearing URIs (so Prefect never stores them).
    A refusal, or a temporary local Prefect API that does not start, is one line, recorded as a failed run."""
    from audiox_core.errors import InputError, PipelineError
    from audiox_core.reel.preflight import refuse_secrets

    try:
        refuse_secrets({"source": source_uri, "destination": out_uri, "cue sheet": cues})
    except InputError as e:
        _record_failed_run(db_url, source_uri, out_uri, settings, str(e))
        raise
    terminal = sys.stderr.isatty()  # a terminal: say what the first seconds go to
    if terminal:
        print("loading the pipeline (torch, OpenCV, Prefect) …", file=sys.stderr, flush=True)
    from flows.soundtrack import soundtrack

    if not os.environ.get("PREFECT_API_URL") and terminal:
        print(
            "starting a temporary local Prefect API: 20–40 s on two cores (set PREFECT_API_URL to use a running"
            " server and skip this) …",
            file=sys.stderr,
            flush=True,
        )
    try:
        return soundtrack(source_uri, out_uri, settings, cues=cues)
    except RuntimeError as e:
        if "ephemeral Prefect API server" not in str(e):
            raise
        error = (
            f"the temporary local Prefect API did not start within {os.environ[_STARTUP]} s (a busy machine?): "
            f"set {_STARTUP} higher, or run `prefect server start` and set PREFECT_API_URL"
        )
        _record_failed_run(db_url, source_uri, out_uri, settings, error)
        raise PipelineError(error) from e


def cmd_run(args: argparse.Namespace) -> int:
    from audiox_core.errors import InputError

    db_url = _checked_database()  # first: it needs no torch import, so a bad URL fails in a second
    if (args.source is None) == (args.text is None):
        raise InputError("run: give a SOURCE (footage, a still, a storyboard or a brief) or --text, one of the two")
    source = args.source if args.text is None else str(_brief_file(args.text))
    _print_outputs(_soundtrack(db_url, source, args.out, _settings_from(args), args.cues))
    return 0


def _brief_file(text: str) -> Path:
    """``--text``: the brief as a text file under AUDIOX_HOME/briefs, named after its first words (so
    its reel is), the same file for the same text."""
    import hashlib
    import re

    from audiox_core.errors import InputError
    from audiox_core.store.files import write_atomic
    from audiox_core.workspace import studio_home

    words = " ".join(text.split())
    if not words:
        raise InputError("--text: the brief is empty (its text is the prompt)")
    stem = re.sub(r"[^0-9A-Za-z]+", "_", words)[:48].strip("_") or "brief"
    path = studio_home() / "briefs" / f"{stem}-{hashlib.sha256(words.encode()).hexdigest()[:8]}.txt"
    if not path.exists():
        write_atomic(path, (words + "\n").encode())
    return path


def cmd_demo(args: argparse.Namespace) -> int:
    from audiox_core.errors import InputError
    from audiox_core.reel.preflight import check_destination
    from audiox_core.train.builder import make_demo_reel

    db_url = _checked_database()
    if args.out.startswith("s3://"):
        raise InputError(f"{args.out}: demo writes its synthetic reel and outputs to a local folder; give a path")
    check_destination(args.out, 0)  # before the synthetic reel is written into it
    out = Path(args.out)
    source_dir = out / "demo-source"
    source_dir.mkdir(parents=True, exist_ok=True)
    reel = make_demo_reel(source_dir / "demo_reel.mp4")
    print(
        f"Synthetic demo reel: {reel.path.resolve()} ({reel.frames} frames at {reel.fps} fps, cuts at frames {list(reel.cuts)})"
    )
    print("  visible events (s): " + ", ".join(f"{e.t:.2f} {e.visual}" for e in reel.events))
    result = _soundtrack(db_url, str(reel.path), str(out), _settings_from(args))
    _print_outputs(result)
    _print_events_and_onsets([e.t for e in reel.events], Path(result["out_dir"]) / "stems" / "foley.wav")
    return 0


def _print_events_and_onsets(events: list[float], foley: Path) -> None:
    """The demo's check by ear, in numbers: each visible event beside the nearest onset of the Foley stem."""
    from audiox_core.train.evaluation import TOLERANCE_S, audio_onsets, match_events
    from audiox_core.train.examples import decode_audio

    rate = 16000
    onsets = audio_onsets(decode_audio(foley, rate), rate)
    print(f"Visible events against the onsets of {foley.name} (±{TOLERANCE_S * 1000:.0f} ms):")
    for t in events:
        near = min(onsets, key=lambda o: abs(o - t), default=None)
        found = f"onset {near:6.2f} s ({(near - t) * 1000:+5.0f} ms)" if near is not None else "no onset"
        mark = "hit " if near is not None and abs(near - t) <= TOLERANCE_S else "miss"
        print(f"  {mark} event {t:6.2f} s  {found}")
    m = match_events(events, onsets)
    print(
        f"  {m.hits} of {m.events} events have an onset within ±{TOLERANCE_S * 1000:.0f} ms; {len(onsets)} onsets in all"
    )


def cmd_scenes(args: argparse.Namespace) -> int:
    from audiox_core.errors import InputError
    from audiox_core.reel.preflight import check_source_uri
    from audiox_core.store.files import write_atomic
    from audiox_core.store.local import local_path
    from audiox_core.store.uri import public_uri
    from audiox_core.video.edl import scenes_csv, scenes_edl
    from audiox_core.video.scenes import DetectorSettings, detect_scenes

    check_source_uri(args.source)
    if args.source.startswith("s3://"):
        raise InputError(f"{public_uri(args.source)}: `scenes` reads a local file; download it, or use `run` for S3")
    path = local_path(args.source)
    given = {"threshold": args.threshold, "min_scene_s": args.min_scene_s, "skim": args.skim}
    _, scenes = detect_scenes(path, DetectorSettings(**{k: v for k, v in given.items() if v is not None}))
    if args.csv:
        write_atomic(Path(args.csv), scenes_csv(scenes).encode())
    if args.edl:
        write_atomic(Path(args.edl), scenes_edl(scenes, path.stem, path.name).encode())
    if args.json:
        print(json.dumps(scenes.to_dict(), indent=2))
    else:
        for s in scenes.scenes:
            print(
                f"{s.index:4d}  {s.start_tc} – {s.end_tc}  frames {s.start_frame}–{s.end_frame}  {s.duration_s:.3f} s"
            )
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    from db.session import redact, upgrade

    url = _checked_database()
    upgrade(url)
    print(f"database at {redact(url)} is at the latest schema")
    return 0


def cmd_model_manifest(args: argparse.Namespace) -> int:
    from audiox_core.model.checkpoint import manifest
    from audiox_core.model.config import AudioXConfig

    print(json.dumps(manifest(AudioXConfig.from_json(args.config, clip_vision=args.clip_vision)), indent=1))
    return 0


def cmd_model_check(args: argparse.Namespace) -> int:
    from collections import Counter

    from audiox_core.model.checkpoint import (
        load_weights,
        parameter_counts,
        read_state_dict,
    )
    from audiox_core.model.config import AudioXConfig
    from audiox_core.store.files import sha256_file

    cfg = AudioXConfig.from_json(args.config, clip_vision=args.clip_vision)
    ckpt = Path(args.ckpt)
    state_dict = read_state_dict(ckpt)
    dtypes = Counter(str(t.dtype).removeprefix("torch.") for t in state_dict.values())
    network = load_weights(cfg, state_dict, str(ckpt))
    counts = parameter_counts(network)
    print(f"{ckpt}: loads strictly into {args.config} ({len(state_dict)} tensors)")
    print(f"  sha256  {sha256_file(ckpt)}")
    print(f"  bytes   {ckpt.stat().st_size:,}")
    print(f"  dtype   {', '.join(f'{d} ×{n}' for d, n in dtypes.most_common())}")
    for part, n in counts.items():
        print(f"  {part:28s} {n:>15,} parameters")
    print(f"  {'total':28s} {sum(counts.values()):>15,} parameters")
    return 0


def cmd_provenance(args: argparse.Namespace) -> int:
    from cli.lineage import lookup, render

    _checked_database()
    print(render(lookup(args.file), "prov" if args.prov_json else "json" if args.json else "text"))
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    from audiox_core.workspace import studio_home
    from cli.watch import events_on_console, poll_prefix, require_api, watch_queue

    require_api()
    with events_on_console(args.debug):
        if args.queue:
            sent = watch_queue(args.queue, once=args.once)
        else:
            sent = poll_prefix(
                args.poll, studio_home() / "watch" / "poll-state.json", once=args.once, interval_s=args.interval
            )
    print(f"{sent} footage event(s) sent")
    return 0


def cmd_inference_worker(args: argparse.Namespace) -> int:
    from tasks.inference import serve_inference

    serve_inference()
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from cli.doctor import repair, run_checks

    if args.repair:
        print("\n".join(repair()))
        return 0
    ok = True
    for check in run_checks(args.model):
        ok &= check.ok
        print(f"{'ok ' if check.ok else 'FAIL'}  {check.name}: {check.detail}")
        if not check.ok and check.fix:
            print(f"      fix: {check.fix}")
    return 0 if ok else 1


class _SettingsHelp(argparse.HelpFormatter):
    """Fills ``{key}`` in help texts with the settings' defaults and choices, read from the dataclasses
    that declare them only when help is shown: they import torch, which other commands do without."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        return action.help.format(**_help_values()) if action.help else action.help


@functools.cache
def _help_values() -> dict[str, Any]:
    from audiox_core.model.sampling import SAMPLERS
    from audiox_core.reel.settings import RunSettings
    from audiox_core.sound.loudness import PRESETS

    presets = ", ".join(f"{p.name} ({p.integrated_lufs:g} LUFS/{p.true_peak_dbtp:g} dBTP)" for p in PRESETS.values())
    return {**RunSettings().to_dict(), "samplers": ", ".join(SAMPLERS), "presets": presets}


def _add_generation_options(p: argparse.ArgumentParser) -> None:
    """The run's settings as options; each defaults to None so only what is given reaches the flow."""
    p.formatter_class = _SettingsHelp
    p.add_argument("--out", default=DEFAULT_OUT, help="output folder (default: ./out)")
    p.add_argument(
        "--model",
        help="demo (the shipped demo model), tiny (random test model) or PATH to an AudioX release folder "
        "(config.json + model.ckpt or model.safetensors); default {model} (AUDIOX_MODEL sets it)",
    )
    p.add_argument("--seed", type=int, help="base seed (default {seed})")
    p.add_argument("--steps", type=int, help="sampling steps (default {steps})")
    p.add_argument(
        "--cfg-scale", dest="cfg_scale", type=float, help="classifier-free guidance scale (default {cfg_scale:g})"
    )
    p.add_argument("--sampler", help="{samplers} (default {sampler})")
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N (default {device})")
    p.add_argument(
        "--batch-size",
        dest="batch_size",
        type=int,
        help="cues per forward pass (default {batch_size}); a rerun after a crash skips finished batches",
    )
    p.add_argument("--loudness", dest="loudness_preset", help="{presets} (default {loudness_preset})")
    p.add_argument(
        "--start-timecode",
        dest="start_timecode",
        help="where the DAW timeline and the broadcast WAVs start (default {start_timecode})",
    )
    p.add_argument(
        "--stem-names", dest="stem_names", help="stem file names on export and delivery (default {stem_names})"
    )
    p.add_argument(
        "--proxy",
        dest="review_proxy",
        action="store_true",
        default=None,
        help="also render review_proxy.mp4 with scene numbers and timecode burned in",
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="audiox-studio", description="Soundtracks for film and video with AudioX.")
    p.add_argument("--debug", action="store_true", help="show tracebacks and full Prefect logs")
    sub = p.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="make a synthetic reel and run the whole pipeline on it")
    _add_generation_options(demo)
    demo.set_defaults(func=cmd_demo)

    run = sub.add_parser("run", help="make the soundtrack of one reel")
    run.add_argument(
        "source",
        nargs="?",
        help="video file (a local path or s3://bucket/key), a still (PNG, JPEG, …), a storyboard (a folder of "
        "stills or a CSV of still,seconds rows) or a text brief (.txt)",
    )
    run.add_argument("--text", help="no picture at all: this brief is the prompt of one cue (text to audio or music)")
    run.add_argument(
        "--seconds",
        type=float,
        help="length of a still, of each still of a storyboard folder, of a --text cue (default {seconds:g})",
    )
    run.add_argument("--kind", help="the --text cue's kind: foley or music (default {kind})")
    run.add_argument(
        "--cues",
        metavar="FILE",
        help="cue sheet (YAML, path or s3:// URI) to follow; default: the reel's own (edited) sheet, or a draft",
    )
    _add_generation_options(run)
    run.set_defaults(func=cmd_run)

    scenes = sub.add_parser("scenes", help="detect scenes and print them")
    scenes.add_argument("source")
    scenes.add_argument("--json", action="store_true", help="print JSON")
    scenes.add_argument("--csv", help="also write the scene list as CSV to this file")
    scenes.add_argument("--edl", help="also write the cuts as a CMX 3600 EDL to this file")
    scenes.formatter_class = _SettingsHelp
    scenes.add_argument(
        "--threshold",
        type=float,
        help="highest cut threshold, weighted HSV change 0–255: calm footage gets an adaptive one below it "
        "(default {scene_threshold:g})",
    )
    scenes.add_argument("--min-scene-s", type=float, help="minimum scene length in seconds (default {min_scene_s:g})")
    scenes.add_argument(
        "--skim",
        choices=("auto", "always", "never"),
        help="decode only reference frames, and every frame only around candidate cuts (H.264/HEVC/MPEG-2/"
        "MPEG-4 with B-frames; same cuts): auto (default) where the packets say it is faster, always, never",
    )
    scenes.set_defaults(func=cmd_scenes)

    provenance = sub.add_parser(
        "provenance", help="what made this file? (found by its content, so renamed copies work)"
    )
    provenance.add_argument("file", help="an output (soundtrack, mix, stem), a generated cue, or source footage")
    fmt = provenance.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="the chain as JSON (as in provenance.json)")
    fmt.add_argument("--prov-json", action="store_true", help="W3C PROV-JSON")
    provenance.set_defaults(func=cmd_provenance)

    watch = sub.add_parser("watch", help="turn S3 uploads into Prefect events that start the s3-drop deployment")
    source = watch.add_mutually_exclusive_group(required=True)
    source.add_argument("--queue", help="SQS queue URL receiving the bucket's ObjectCreated notifications")
    source.add_argument("--poll", help="s3://bucket/prefix to list periodically (buckets without notifications)")
    watch.add_argument("--interval", type=float, default=60.0, help="seconds between listings with --poll (default 60)")
    watch.add_argument("--once", action="store_true", help="one receive (or one listing), then exit")
    watch.set_defaults(func=cmd_watch)

    worker = sub.add_parser(
        "inference-worker",
        help="load the model once and run generation batches for every flow (AUDIOX_INFERENCE=task-worker)",
    )
    worker.set_defaults(func=cmd_inference_worker)

    from audiox_core.reel.settings import default_model

    doctor = sub.add_parser("doctor", help="check ffmpeg, torch/CUDA, model weights, database and Prefect API")
    doctor.add_argument(
        "--model", default=default_model(), help="model to check: demo, tiny or PATH (default %(default)s)"
    )
    doctor.add_argument(
        "--repair",
        action="store_true",
        help="instead of the checks: close the runs of killed processes as crashed and remove their leftover folders",
    )
    doctor.set_defaults(func=cmd_doctor)

    model = sub.add_parser("model", help="inspect AudioX configs and checkpoints")
    model_sub = model.add_subparsers(dest="model_command", required=True)
    manifest = model_sub.add_parser(
        "manifest", help="print the {key: shape} JSON of the model a config builds (no weights)"
    )
    check = model_sub.add_parser(
        "check", help="load a checkpoint strictly and report parameter counts, dtype and sha256"
    )
    for p_ in (manifest, check):
        p_.add_argument("--config", required=True, help="official-format config.json")
        p_.add_argument("--clip-vision", help="CLIPVisionConfig JSON for a non-default CLIP tower (test models)")
    check.add_argument("--ckpt", required=True, help="model.ckpt ({'state_dict': …}) or .safetensors")
    manifest.set_defaults(func=cmd_model_manifest)
    check.set_defaults(func=cmd_model_check)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="apply Alembic migrations").set_defaults(func=cmd_db)

    from cli.export import add_parser as add_export_parser
    from cli.serve import add_parser as add_serve_parser
    from cli.train import add_train_parser

    add_train_parser(sub)
    add_serve_parser(sub)
    add_export_parser(sub)
    return p


class _OwnWarningsOnly(logging.Filter):
    """Without --debug the console shows progress, our warnings and one error line. Prefect's run
    logs (tracebacks included) still reach the Prefect API and its UI."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith(("prefect", "httpx", "uvicorn", "alembic"))


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # The temporary local API (no PREFECT_API_URL) gets 20 s to start by default, too short on a busy
    # machine (it failed a fresh install's first demo under load); give it 90 s.
    os.environ.setdefault(_STARTUP, "90")
    os.environ.setdefault("DO_NOT_TRACK", "1")  # the Prefect client's telemetry notice, off with the rest
    root = logging.getLogger()
    from audiox_core.producer_text import TerminalFormatter

    console = logging.StreamHandler()
    console.setFormatter(TerminalFormatter("%(levelname)s %(name)s: %(message)s"))
    console.setLevel(logging.INFO if args.debug else logging.WARNING)
    if args.debug:
        root.setLevel(logging.INFO)
    else:
        console.addFilter(_OwnWarningsOnly())
    root.addHandler(console)
    from audiox_core.errors import PipelineError
    from audiox_core.lifecycle import interrupts_raised

    try:
        with interrupts_raised():  # SIGTERM cleans up as Ctrl-C does: runs closed, folders removed
            return args.func(args)
    except PipelineError as e:
        if args.debug:
            raise
        _print_error(str(e))
        return 1
    except KeyboardInterrupt as e:
        return _interrupted(args, e)
    except BrokenPipeError:  # the reader went away (e.g. `| head`): stop quietly, as other Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as e:  # a bug or an unforeseen failure: one line, the traceback with --debug
        if args.debug:
            raise
        _print_error(_unforeseen(e))
        return 1
    finally:
        root.removeHandler(console)


def _interrupted(args: argparse.Namespace, e: KeyboardInterrupt) -> int:
    """One line saying which signal stopped the command and how its run was recorded; the shell's
    exit status for that signal (130 for SIGINT, 143 for SIGTERM)."""
    import signal

    from audiox_core.lifecycle import Interrupted, process_tag

    signum = e.signum if isinstance(e, Interrupted) else signal.SIGINT
    line = f"interrupted ({signal.Signals(signum).name})"
    if args.command in ("run", "demo"):
        from sqlalchemy.exc import SQLAlchemyError

        from audiox_core.workspace import studio_home
        from db.repository import process_runs
        from db.session import database_url

        try:
            runs = process_runs(database_url(studio_home()), process_tag())
        except (SQLAlchemyError, OSError):  # the database down: the signal is still the line's news
            print(f"{line}: its run could not be read from the database", file=sys.stderr)
            return 128 + signum
        if not runs:
            line += " before its run started"
        else:
            run_id, status, reason = runs[0]
            line += f": run {run_id} recorded as {status}"
            line += "" if reason is None or reason.startswith("interrupted") else f" ({reason})"
    print(line, file=sys.stderr)
    return 128 + signum


def _unforeseen(e: Exception) -> str:
    """The line for an exception nothing named: the database going away says so, anything else is an internal error."""
    from audiox_core.workspace import studio_home
    from db.pending import database_lost, lost_reason
    from db.session import database_url

    if database_lost(e):
        return lost_reason(database_url(studio_home()), e)
    return f"internal error: {type(e).__name__}: {e} (rerun with --debug for the traceback)"


def _print_error(message: str) -> None:
    """``error: <message>`` on one line of stderr, credentials and signatures removed."""
    from audiox_core.producer_text import terminal_text
    from audiox_core.store.uri import scrub

    print(f"error: {terminal_text(' '.join(scrub(message).split()))}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
