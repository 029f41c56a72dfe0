"""A reel's soundtrack as a DAW receives it: every cue where the mix placed it, built from a run or from a published folder."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from fractions import Fraction
from pathlib import Path

from audiox_core.errors import InputError
from audiox_core.provenance.records import ProvenanceDocument
from audiox_core.reel.cues import cue_file
from audiox_core.reel.cuesheet import SpannedCue, parse_sheet, resolve
from audiox_core.reel.naming import reel_title, source_name
from audiox_core.reel.stem_names import DEFAULT_PATTERN, STEM_CODES, pattern_problem, version_label
from audiox_core.sound.audio import MIX_RATE
from audiox_core.sound.bwf import Bext, Loudness, read_bext
from audiox_core.sound.mix import MixSettings
from audiox_core.sound.timeline import CueKind, Placement, TimelineSettings, place_cues, to_sample
from audiox_core.store.files import sha256_file
from audiox_core.validation import check_fields, matching, rule
from audiox_core.video.scenes import Scene
from audiox_core.video.timecode import parse_timecode

TIMECODE_SHAPE = r"\d\d:\d\d:\d\d[:;]\d\d"


@dataclass(frozen=True)
class DawSettings:
    """Where the timeline starts (timecode at the picture's rate) and how the stems are named."""

    start_timecode: str = field(default="01:00:00:00", metadata=matching(TIMECODE_SHAPE, "HH:MM:SS:FF"))
    stem_names: str = field(default=DEFAULT_PATTERN, metadata=rule(pattern_problem))

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True)
class DawCue:
    """One cue as a clip: where the mix put it, its file (None: muted, so never generated) and its provenance."""

    cue_id: str
    kind: CueKind
    scene_index: int
    placement: Placement
    file: str | None  # the cue WAV, relative to the version's folder
    prompt: str
    seed: int
    generation_key: str | None = None
    model: str | None = None
    checkpoint_sha256: str | None = None

    @property
    def muted(self) -> bool:
        return self.file is None


@dataclass(frozen=True)
class DawReel:
    title: str
    run_id: int
    source_uri: str  # as people see it (no secrets)
    fps: Fraction
    frames: int  # the picture's length in frames
    samples: int  # the soundtrack's length at ``rate``
    scenes: tuple[Scene, ...]
    cues: tuple[DawCue, ...]
    dialogue: str | None  # the dialogue stem, when the reel has its own sound
    stem_gain_db: Mapping[str, float]
    normalization_gain_db: float
    settings: DawSettings = DawSettings()
    rate: int = MIX_RATE

    @property
    def source_name(self) -> str:
        return source_name(self.source_uri)

    @property
    def start_frame(self) -> int:
        return parse_timecode(self.settings.start_timecode, self.fps, "start_timecode")

    @property
    def start_sample(self) -> int:
        return start_sample(self.settings, self.fps, self.rate)


def start_sample(settings: DawSettings, fps: Fraction, rate: int = MIX_RATE) -> int:
    """The timeline's start in samples since midnight (a broadcast WAV's time reference): its start
    timecode's frame at the picture's rate, in real time (29.97 drop frame: 01:00:00;00 is 3599.9964 s)."""
    frame = parse_timecode(settings.start_timecode, fps, "start_timecode")
    return round(Fraction(frame) / fps * rate)


@dataclass(frozen=True)
class Stamps:
    """The bext chunks of one version's files, each spotted to where it starts on the timeline."""

    title: str
    run_id: int
    start_sample: int
    made: datetime

    @classmethod
    def of(cls, settings: DawSettings, fps: Fraction, title: str, run_id: int) -> Stamps:
        return cls(title, run_id, start_sample(settings, fps), datetime.now())

    def dated(self, cues: Iterable[Path]) -> Stamps:
        """Stamps dated when the newest of ``cues`` was made (a version made of reused cues is then
        the same bytes again), or now when none carries a date."""
        dates = [b.origination for path in cues if (b := read_bext(path)) is not None]
        return replace(self, made=max(dates)) if dates else self

    def _reference(self, what: str) -> str:
        return f"{version_label(self.run_id)}-{what}-{self.title}"[:32]

    def cue(self, scene_index: int, kind: str, prompt: str, start: int) -> Bext:
        """A cue file's chunk: ``start`` is its first sample on the mix timeline."""
        return Bext(
            description=f"{kind} cue of scene {scene_index} ({self.title} {version_label(self.run_id)}): {prompt}",
            originator_reference=self._reference(f"s{scene_index}{kind[:2]}"),
            origination=self.made,
            time_reference=self.start_sample + start,
        )

    def output(self, stem: str, loudness: Loudness = Loudness()) -> Bext:
        """A stem's or the printmaster's (``mix``) chunk: it starts with the timeline."""
        return Bext(
            description=f"{STEM_CODES[stem]} of {self.title} {version_label(self.run_id)}",
            originator_reference=self._reference(STEM_CODES[stem]),
            origination=self.made,
            time_reference=self.start_sample,
            loudness=loudness,
        )


def placed(spanned: Sequence[SpannedCue], timeline: TimelineSettings) -> list[tuple[SpannedCue, Placement]]:
    """Every sheet cue with its placement, muted ones too (they keep their place, as in the mix)."""
    where = {(p.scene_index, p.kind): p for p in place_cues([s.as_span() for s in spanned], timeline)}
    return [(s, where[(s.scene_index, s.cue.kind)]) for s in spanned]


@dataclass(frozen=True)
class Made:
    """What made one cue's file: the file (relative to the version), its generation key, model and checkpoint."""

    file: str
    key: str | None
    model: str | None
    checkpoint_sha256: str | None


def daw_cues(
    spanned: Sequence[SpannedCue], timeline: TimelineSettings, made: Mapping[tuple[int, str], Made]
) -> tuple[DawCue, ...]:
    cues = []
    for s, p in placed(spanned, timeline):
        m = None if s.cue.mute else made.get((s.scene_index, s.cue.kind))
        cues.append(
            DawCue(
                s.cue.id,
                s.cue.kind,
                s.scene_index,
                p,
                m.file if m else None,
                s.cue.prompt,
                s.cue.seed,
                m.key if m else None,
                m.model if m else None,
                m.checkpoint_sha256 if m else None,
            )
        )
    return tuple(sorted(cues, key=lambda c: (c.placement.start, c.kind, c.cue_id)))


REQUIRED = ("provenance.json", "scenes.json", "cues.yaml", "mix.wav")


def reel_from_folder(folder: Path, settings: DawSettings) -> DawReel:
    """The DAW view of a published version's folder, checked against its provenance.json: every
    output it lists is there with its recorded size, and every file the export reads has its
    recorded sha256 (a folder holding files of two versions is refused); InputError naming the
    folder and the first problem otherwise."""
    if not folder.is_dir():
        raise InputError(f"{folder}: no such reel folder")
    missing = [n for n in REQUIRED if not (folder / n).is_file()]
    if missing:
        raise InputError(f"{folder}: not a complete reel version (no {', '.join(missing)})")
    try:
        document = ProvenanceDocument.from_json((folder / "provenance.json").read_text())
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(f"{folder}: provenance.json does not parse ({type(e).__name__}: {e})") from e
    files = _checked_outputs(folder, document)
    scenes_doc = json.loads((folder / "scenes.json").read_text())
    fps = Fraction(scenes_doc["fps"])
    scenes = tuple(Scene(**s) for s in scenes_doc["scenes"])
    sheet = parse_sheet((folder / "cues.yaml").read_text(), f"{folder}/cues.yaml")
    spanned = resolve(sheet, scenes, fps, f"{folder}/cues.yaml")
    crossfade = float(document.run.settings.get("music_crossfade_s", TimelineSettings().music_crossfade_s))
    made, spans, present = {}, {}, set(files.values())
    for g in document.generations:
        record, where = g.generation, (g.scene_index, g.generation.kind)
        name = cue_file(*where)
        if name not in present:
            raise InputError(f"{folder}: provenance.json's cue {name} is not among its outputs")
        made[where] = Made(name, record.key, record.model_name, record.checkpoint_sha256)
        spans[where] = (record.span_start, record.span_length)
    cues = daw_cues(spanned, TimelineSettings(music_crossfade_s=crossfade), made)
    for c in cues:
        recorded = spans.get((c.scene_index, c.kind))
        if not c.muted and recorded != (c.placement.start, c.placement.length):
            raise InputError(
                f"{folder}: cues.yaml places cue {c.cue_id} at samples {c.placement.start}+{c.placement.length}, "
                f"its generation at {recorded}: the sheet is from another version"
            )
    mix = document.mix
    return DawReel(
        title=reel_title(document.source.uri),
        run_id=document.run.id,
        source_uri=document.source.uri,
        fps=fps,
        frames=scenes[-1].end_frame,
        samples=to_sample(scenes[-1].end_s, MIX_RATE),
        scenes=scenes,
        cues=cues,
        dialogue="stems/dialogue.wav" if "stems/dialogue.wav" in files.values() else None,
        stem_gain_db=MixSettings().stem_gain_db,
        normalization_gain_db=mix.normalization_gain_db,
        settings=settings,
    )


READ_BY_EXPORT = (".wav", ".yaml", ".json")


def _checked_outputs(folder: Path, document: ProvenanceDocument) -> dict[str, str]:
    """Each output's URI → its name in ``folder``, after checking that the folder holds this version."""
    mix = next((o for o in document.outputs if o.kind == "mix"), None)
    if mix is None:
        raise InputError(f"{folder}: provenance.json records no mix.wav")
    base = mix.uri.removesuffix("mix.wav")
    names = {}
    for o in document.outputs:
        name = o.uri.removeprefix(base)
        path = folder / name
        if not path.is_file():
            raise InputError(f"{folder}: incomplete: {name} (listed in provenance.json) is missing")
        if path.stat().st_size != o.bytes or (name.endswith(READ_BY_EXPORT) and sha256_file(path) != o.sha256):
            raise InputError(
                f"{folder}: {name} is not the file provenance.json records (sha256 {o.sha256[:12]}…): "
                "the folder holds another version's file"
            )
        names[o.uri] = name
    return names
