"""The reel as an OpenTimelineIO timeline: picture, dialogue, and every cue a clip where the mix placed it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import opentimelineio as otio

from audiox_core.reel.daw_reel import DawCue, DawReel
from audiox_core.reel.stem_names import version_label
from audiox_core.sound.timeline import DIALOGUE, FOLEY, MUSIC
from audiox_core.video.timecode import timecode

NAMESPACE = "audiox"  # every fact of ours on the timeline, its tracks, clips and markers
TRACK_NAMES = {DIALOGUE: "Dialogue", FOLEY: "Foley", MUSIC: "Music"}


@dataclass(frozen=True)
class Cut:
    """A cue on its track: the samples it shows [cut_in, cut_out), and the transitions at either end
    (a crossfade with the cue it meets: its halves before and after the cut; a fade: its length)."""

    cue: DawCue
    cut_in: int
    cut_out: int
    crossfade_in: tuple[int, int] | None = None  # (before the cut, after it)
    crossfade_out: tuple[int, int] | None = None


def cuts(cues: Sequence[DawCue]) -> list[Cut]:
    """The cues of one kind with their cut points: where a music cue crossfades into the next (equal
    power, overlapping by the fades the mix applied), the cut sits where the mix's fades cross."""
    ordered = sorted(cues, key=lambda c: (c.placement.start, c.cue_id))
    cut_in = {c.cue_id: c.placement.start for c in ordered}
    cut_out = {c.cue_id: c.placement.start + c.placement.length for c in ordered}
    into: dict[str, tuple[int, int]] = {}
    out_of: dict[str, tuple[int, int]] = {}
    for a in ordered:
        pa = a.placement
        for b in ordered:
            pb = b.placement
            overlap = pa.start + pa.length - pb.start
            if (
                a is not b
                and pa.equal_power
                and pb.equal_power
                and pb.start > pa.start
                and overlap > 0
                and pa.fade_out == pb.fade_in == overlap
            ):
                before, after = pb.fade_in // 2, overlap - pb.fade_in // 2
                cut = pb.start + before
                cut_out[a.cue_id], cut_in[b.cue_id] = cut, cut
                out_of[a.cue_id], into[b.cue_id] = (before, after), (before, after)
    return [Cut(c, cut_in[c.cue_id], cut_out[c.cue_id], into.get(c.cue_id), out_of.get(c.cue_id)) for c in ordered]


def lanes(kind_cuts: Sequence[Cut]) -> list[list[Cut]]:
    """Tracks for the cues of one kind: each cue on the first whose last cue ends by its cut in (a
    crossfaded cue follows the cue it crossfades from), so no two cues overlap on one track."""
    tracks: list[list[Cut]] = []
    for c in kind_cuts:
        for track in tracks:
            last = track[-1]
            partner = c.crossfade_in is not None and last.crossfade_out is not None and last.cut_out == c.cut_in
            if (c.crossfade_in is None and last.cut_out <= c.cut_in) or partner:
                track.append(c)
                break
        else:
            tracks.append([c])
    return tracks


class Clock:
    """Samples at the reel's rate as OTIO times at the timeline's rate (exact fractions, each time
    converted from its absolute sample, so nothing accumulates)."""

    def __init__(self, sample_rate: int, rate: Fraction) -> None:
        self.sample_rate, self.rate, self.float_rate = sample_rate, rate, float(rate)

    def at(self, samples: int) -> otio.opentime.RationalTime:
        return otio.opentime.RationalTime(float(Fraction(samples) * self.rate / self.sample_rate), self.float_rate)

    def span(self, start: int, length: int) -> otio.opentime.TimeRange:
        return otio.opentime.TimeRange(self.at(start), self.at(length))


def _fade(clock: Clock, before: int, after: int, what: str) -> otio.schema.Transition:
    transition = otio.schema.Transition(
        name=what,
        transition_type=otio.schema.TransitionTypes.SMPTE_Dissolve,
        in_offset=clock.at(before),
        out_offset=clock.at(after),
    )
    transition.metadata[NAMESPACE] = {
        "curve": "equal power" if what == "crossfade" else "linear",
        "samples": before + after,
    }
    return transition


def _cue_clip(clock: Clock, cut: Cut, gain_db: float) -> otio.schema.Clip:
    c, p = cut.cue, cut.cue.placement
    available = clock.span(0, p.length)
    if c.muted:
        reference: otio.core.MediaReference = otio.schema.MissingReference(available_range=available)
    else:
        reference = otio.schema.ExternalReference(target_url=c.file, available_range=available)
    clip = otio.schema.Clip(
        name=f"{c.cue_id} {c.kind}",
        media_reference=reference,
        source_range=clock.span(cut.cut_in - p.start, cut.cut_out - cut.cut_in),
    )
    clip.enabled = not c.muted
    clip.metadata[NAMESPACE] = {
        "cue_id": c.cue_id,
        "kind": c.kind,
        "scene": c.scene_index,
        "prompt": c.prompt,
        "seed": c.seed,
        "gain_db": p.gain_db,
        "stem_gain_db": gain_db,
        "muted": c.muted,
        "model": c.model,
        "checkpoint_sha256": c.checkpoint_sha256,
        "generation_key": c.generation_key,
        "start_sample": p.start,  # the cue file's first sample on the mix timeline
        "length_samples": p.length,
        "fade_in_samples": p.fade_in,
        "fade_out_samples": p.fade_out,
        "fade_curve": "equal power" if p.equal_power else "linear",
    }
    return clip


def _fades_out(cut: Cut) -> bool:
    return cut.crossfade_out is None and cut.cue.placement.fade_out > 0


def _track(clock: Clock, name: str, kind: str, lane: Sequence[Cut], total: int, gain_db: float) -> otio.schema.Track:
    """One track: gaps between the cues, each fade a transition with the gap beside it, crossfades
    between the cues that meet, and a last gap to the reel's end."""
    track = otio.schema.Track(name=name, kind=otio.schema.TrackKind.Audio)
    track.metadata[NAMESPACE] = {"kind": kind, "stem_gain_db": gain_db}
    pos, previous = 0, None
    for cut in lane:
        fade_in = cut.cue.placement.fade_in
        if cut.crossfade_in is not None and previous is not None and previous.crossfade_out is not None:
            track.append(_fade(clock, *cut.crossfade_in, "crossfade"))
        else:
            fading_out = previous is not None and _fades_out(previous)
            if fading_out:
                track.append(_fade(clock, previous.cue.placement.fade_out, 0, "fade out"))
            if cut.cut_in > pos or fade_in or fading_out:  # a fade is a transition with a gap (here perhaps empty)
                track.append(otio.schema.Gap(source_range=clock.span(0, cut.cut_in - pos)))
            if fade_in:
                track.append(_fade(clock, 0, fade_in, "fade in"))
        track.append(_cue_clip(clock, cut, gain_db))
        pos, previous = cut.cut_out, cut
    fading_out = previous is not None and _fades_out(previous)
    if fading_out:
        track.append(_fade(clock, previous.cue.placement.fade_out, 0, "fade out"))
    if total > pos or fading_out:
        track.append(otio.schema.Gap(source_range=clock.span(0, max(0, total - pos))))
    return track


def timeline(reel: DawReel, *, rate: Fraction | None = None, picture: bool = True) -> otio.schema.Timeline:
    """The reel's timeline at ``rate`` (default: the picture's frame rate), starting at the reel's
    start timecode: the picture (with the scene cuts as markers), dialogue, and one track per cue
    kind (more where cues of a kind overlap), every fact of ours under the ``audiox`` namespace."""
    rate = rate or reel.fps
    clock = Clock(reel.rate, rate)
    frame_rate = float(reel.fps)
    tl = otio.schema.Timeline(
        name=f"{reel.title} {version_label(reel.run_id)}",
        global_start_time=otio.opentime.RationalTime(reel.start_frame, frame_rate),
    )
    tl.metadata[NAMESPACE] = _timeline_facts(reel)
    if picture:
        tl.tracks.append(_picture(reel, frame_rate))
    gains = reel.stem_gain_db
    if reel.dialogue:
        dialogue = otio.schema.Track(name=TRACK_NAMES[DIALOGUE], kind=otio.schema.TrackKind.Audio)
        dialogue.metadata[NAMESPACE] = {"kind": DIALOGUE, "stem_gain_db": 0.0, "levelled": True}
        span = clock.span(0, reel.samples)
        dialogue.append(
            otio.schema.Clip(
                name=DIALOGUE,
                media_reference=otio.schema.ExternalReference(target_url=reel.dialogue, available_range=span),
                source_range=span,
            )
        )
        tl.tracks.append(dialogue)
    for kind in (FOLEY, MUSIC):
        kind_lanes = lanes(cuts([c for c in reel.cues if c.kind == kind]))
        for i, lane in enumerate(kind_lanes):
            name = TRACK_NAMES[kind] + (f" {i + 1}" if i else "")
            tl.tracks.append(_track(clock, name, kind, lane, reel.samples, gains.get(kind, 0.0)))
    for s in reel.scenes:
        marker = otio.schema.Marker(
            name=f"Scene {s.index}",
            marked_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(s.start_frame, frame_rate), otio.opentime.RationalTime(0, frame_rate)
            ),
            color=otio.schema.MarkerColor.RED,
        )
        marker.metadata[NAMESPACE] = {"scene": s.index, "start_s": s.start_s, "timecode": s.start_tc}
        tl.tracks.markers.append(marker)
    return tl


def _picture(reel: DawReel, frame_rate: float) -> otio.schema.Track:
    video = otio.schema.Track(name="Picture", kind=otio.schema.TrackKind.Video)
    span = otio.opentime.TimeRange(
        otio.opentime.RationalTime(0, frame_rate), otio.opentime.RationalTime(reel.frames, frame_rate)
    )
    video.append(
        otio.schema.Clip(
            name=reel.source_name,
            media_reference=otio.schema.ExternalReference(target_url=reel.source_uri, available_range=span),
            source_range=span,
        )
    )
    return video


def _timeline_facts(reel: DawReel) -> dict[str, Any]:
    return {
        "reel": reel.title,
        "run_id": reel.run_id,
        "version": version_label(reel.run_id),
        "source": reel.source_uri,
        "fps": f"{reel.fps.numerator}/{reel.fps.denominator}",
        "sample_rate": reel.rate,
        "samples": reel.samples,
        "start_timecode": timecode(reel.start_frame, reel.fps),
        "start_sample": reel.start_sample,
        "stem_gain_db": dict(reel.stem_gain_db),
        "normalization_gain_db": reel.normalization_gain_db,
        "ducking": "the mix ducks Foley and music under the dialogue; clip gains leave it out",
    }
