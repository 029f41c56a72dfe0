"""``audiox-studio export``: a published reel version's DAW package again (another start timecode or stem naming), nothing generated."""

from __future__ import annotations

import argparse
from pathlib import Path

from audiox_core.errors import InputError
from audiox_core.reel.daw_reel import DawSettings
from audiox_core.reel.stem_names import DEFAULT_PATTERN, check_pattern
from audiox_core.validation import checked


def cmd_export(args: argparse.Namespace) -> int:
    from audiox_core.producer_text import terminal_text
    from audiox_core.reel.daw_package import export_reel

    start = checked("--start", DawSettings, "start_timecode", args.start)
    names = check_pattern(args.stem_names, "--stem-names")
    if "://" in args.reel:
        raise InputError(
            f"{args.reel}: export reads a local version folder; copy the version first "
            "(e.g. aws s3 sync s3://…/<reel>/versions/<version>/ DIR)"
        )
    folder = Path(args.reel)
    target = Path(args.to) if args.to else Path.cwd() / f"{folder.resolve().name}-daw"
    reel, written, seconds = export_reel(folder, target, DawSettings(start, names))
    cues = sum(1 for c in reel.cues if not c.muted)
    print(
        terminal_text(
            f"{target}: {len(written)} files for {reel.title} v{reel.run_id:03d} "
            f"({cues} cues, start {reel.settings.start_timecode}) in {seconds:.1f} s"
        )
    )
    for path in written:
        if path.parent == target:
            print(terminal_text(f"  {path}"))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="write a reel version's DAW package again: soundtrack.otio/.aaf, cues and named stems as broadcast WAV",
    )
    p.add_argument("reel", help="a published reel version's folder (the one holding provenance.json)")
    p.add_argument("--to", metavar="DIR", help="a new folder for the package (default: ./<reel folder>-daw)")
    p.add_argument("--start", default="01:00:00:00", help="the timeline's start timecode (default 01:00:00:00)")
    p.add_argument(
        "--stem-names",
        default=DEFAULT_PATTERN,
        help="stem file name pattern; fields {reel} {version} {stem} {channels} {rate} {bits} {fps} "
        f"(default {DEFAULT_PATTERN})",
    )
    p.set_defaults(func=cmd_export)
