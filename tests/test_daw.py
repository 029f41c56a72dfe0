"""The DAW hand-off read back by real clients: soundtrack.otio through OpenTimelineIO (and its EDL and
FCP XML adapters), soundtrack.aaf through pyaaf2 and the OTIO AAF adapter, bext chunks through ffprobe."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import aaf2
import numpy as np
import opentimelineio as otio
import pytest
from daw_reels import long_reel, only, write_cue_files

from audiox_core.errors import InputError
from audiox_core.reel.aaf_export import write_aaf
from audiox_core.reel.daw_reel import DawReel, DawSettings
from audiox_core.reel.naming import reel_folder
from audiox_core.reel.otio_timeline import NAMESPACE, timeline
from audiox_core.reel.stem_names import check_pattern, fps_label, stem_file
from audiox_core.sound.audio import MIX_RATE, Wav24File, read_wav, write_wav24
from audiox_core.sound.bwf import Bext, Loudness, read_bext, read_layout, restamp, write_stamped
from audiox_core.video.timecode import parse_timecode

RATES = {"23.976": Fraction(24000, 1001), "25": Fraction(25), "29.97DF": Fraction(30000, 1001)}
START = {"23.976": "00:59:58:00", "25": "01:00:00:00", "29.97DF": "01:00:00;00"}


def ffprobe_tags(path: Path) -> dict[str, str]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format_tags", "-of", "json", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)["format"].get("tags", {})


def wav_data(path: Path) -> bytes:
    layout = read_layout(path)
    with open(path, "rb") as f:
        f.seek(layout.data_offset)
        return f.read(layout.data_bytes)


def clip_origins(track: otio.schema.Track, rate: int = MIX_RATE) -> list[tuple[otio.schema.Clip, float, float]]:
    """(clip, where its media's sample 0 sits on the track, where its shown part ends), in samples."""
    found = []
    for i, item in enumerate(track):
        if isinstance(item, otio.schema.Clip):
            shown = track.range_of_child_at_index(i)
            origin = (shown.start_time - item.source_range.start_time).rescaled_to(rate).value
            found.append((item, origin, shown.end_time_exclusive().rescaled_to(rate).value))
    return found


# --- broadcast WAV -------------------------------------------------------------------------------------


def test_bext_chunk_reads_back_through_ffprobe_and_keeps_the_samples(tmp_path: Path) -> None:
    from datetime import datetime

    audio = np.random.default_rng(1).uniform(-0.9, 0.9, (2, 4801)).astype(np.float32)
    plain, stamped = tmp_path / "plain.wav", tmp_path / "stamped.wav"
    write_wav24(plain, audio, MIX_RATE)
    bext = Bext("FXStem of reel v001", "v001-FX-reel", datetime(2026, 12, 7, 9, 30, 5), 172_800_000 + 2**33)
    write_wav24(stamped, audio, MIX_RATE, bext.chunk(MIX_RATE, 2))
    assert read_bext(plain) is None
    assert read_bext(stamped) == bext
    assert wav_data(stamped) == wav_data(plain)
    assert np.array_equal(read_wav(stamped)[0], read_wav(plain)[0])
    tags = ffprobe_tags(stamped)
    assert tags["time_reference"] == str(172_800_000 + 2**33)
    assert tags["encoded_by"] == "AudioX Studio" and tags["comment"] == "FXStem of reel v001"
    assert tags["date"] == "2026-12-07"

    moved = replace(bext, time_reference=86_400, loudness=Loudness(-23.0, 4.5, -1.2))
    restamp(stamped, moved)
    assert read_bext(stamped) == moved and wav_data(stamped) == wav_data(plain)
    copy = tmp_path / "copy.wav"
    write_stamped(plain, copy, moved)
    assert read_bext(copy) == moved and wav_data(copy) == wav_data(plain)
    assert ffprobe_tags(copy)["time_reference"] == "86400"


def test_a_streamed_wav_gets_its_final_chunk_on_close(tmp_path: Path) -> None:
    from datetime import datetime

    first = Bext("mix", "ref", datetime(2026, 1, 1), 48_000)
    f = Wav24File(tmp_path / "mix.wav", 2, MIX_RATE, 100, first.chunk(MIX_RATE, 2))
    f.write_at(0, np.arange(200, dtype="<i4").reshape(100, 2))
    final = replace(first, loudness=Loudness(-23.1, 6.0, -1.0, -18.0, -20.5))
    f.close(final.chunk(MIX_RATE, 2))
    assert read_bext(tmp_path / "mix.wav") == final
    assert read_layout(tmp_path / "mix.wav").frames == 100
    with pytest.raises(ValueError, match="cannot replace"):
        g = Wav24File(tmp_path / "other.wav", 2, MIX_RATE, 10, first.chunk(MIX_RATE, 2))
        g.close(b"bext\0\0\0\0")


# --- timecode and names ----------------------------------------------------------------------------------


def test_start_timecodes_parse_or_say_why() -> None:
    df = Fraction(30000, 1001)
    assert parse_timecode("01:00:00;00", df, "start") == 107_892
    assert parse_timecode("01:00:00:00", Fraction(24000, 1001), "start") == 86_400
    assert parse_timecode("00:10:00;00", df, "start") == 17_982
    for text, why in [
        ("1:00:00:00", "not a timecode"),
        ("01:00:00", "not a timecode"),
        ("24:00:00:00", "beyond 23:59:59:29"),
        ("01:00:61:00", "beyond"),
        ("01:00:00:30", "beyond"),
        ("01:01:00;01", "skips frames 00–01 of minute 1"),
    ]:
        with pytest.raises(InputError, match=why) as e:
            parse_timecode(text, df, "start_timecode")
        assert str(e.value).startswith(f"start_timecode {text!r}")


def test_stem_name_patterns() -> None:
    assert fps_label(Fraction(24000, 1001)) == "2398" and fps_label(Fraction(30000, 1001)) == "2997DF"
    assert fps_label(Fraction(25)) == "25"
    name = stem_file(
        check_pattern("{reel}_{version}_{stem}_{channels}ch_{rate}k_{bits}b_{fps}"),
        "foley",
        reel="bikes",
        run_id=12,
        fps=Fraction(25),
        rate=48_000,
    )
    assert name == "bikes_v012_FXStem_2ch_48k_24b_25.wav"
    for pattern, why in [
        ("{reel}/{stem}", "path separator"),
        ("..\\{stem}", "path separator"),
        ("{reel}_{take}_{stem}", r"unknown field \{take\}"),
        ("{reel}_{version}", r"no \{stem\}"),
        ("{stem!r}", "takes no format|formats field"),
        ("{stem", "does not parse"),
        ("", "empty"),
    ]:
        with pytest.raises(InputError, match=why):
            check_pattern(pattern)


# --- a two-hour timeline ---------------------------------------------------------------------------------


@pytest.mark.parametrize("label", ["23.976", "29.97DF"])
def test_a_two_hour_timeline_keeps_every_cue_to_the_sample(label: str) -> None:
    reel = long_reel(RATES[label], start=START[label])
    tl = otio.adapters.read_from_string(otio.adapters.write_to_string(timeline(reel), "otio_json"), "otio_json")
    placed = {c.cue_id: c for c in reel.cues}
    seen = 0
    for track in tl.tracks:
        if track.kind != otio.schema.TrackKind.Audio:
            continue
        ends = -1.0
        for clip, origin, end in clip_origins(track):
            cue = placed[clip.metadata[NAMESPACE]["cue_id"]]
            assert abs(origin - cue.placement.start) < 1e-3, (clip.name, origin, cue.placement.start)
            shown_start = end - clip.source_range.duration.rescaled_to(MIX_RATE).value
            assert shown_start >= ends - 1e-6  # nothing overlaps on one track
            ends = end
            seen += 1
    assert seen == len(reel.cues)
    last = max(reel.cues, key=lambda c: c.placement.start)
    assert last.placement.start > 7100 * MIX_RATE  # the checks above reached the reel's second hour
    assert tl.global_start_time.value == reel.start_frame


def test_a_two_hour_aaf_places_its_clips_to_the_sample(tmp_path: Path) -> None:
    reel = only(long_reel(RATES["23.976"], scene_s=120.0, cue_s=0.2), ("foley",))  # 60 cues over two hours
    write_cue_files(reel, tmp_path)
    write_aaf(reel, tmp_path, tmp_path / "long.aaf")
    back = otio.adapters.read_from_file(str(tmp_path / "long.aaf"), adapter_name="AAF")
    (track,) = [t for t in back.tracks if t.kind == otio.schema.TrackKind.Audio]
    origins = [origin for _, origin, _ in clip_origins(track)]
    assert origins == [c.placement.start for c in reel.cues]


# --- a real reel through the pipeline at three frame rates -----------------------------------------------

SHEET = """format: 1
reel: {reel}
fps: {fps}
cues:
- {{id: F0, kind: foley, scenes: [0, 0], prompt: footsteps, seed: 1}}
- {{id: F1, kind: foley, scenes: [1, 1], prompt: door, seed: 2, gain_db: -4.5}}
- {{id: F2, kind: foley, scenes: [2, 2], prompt: wind, seed: 3, mute: true}}
- {{id: F3, kind: foley, scenes: [3, 3], prompt: rain, seed: 4}}
- {{id: M0, kind: music, scenes: [0, 2], prompt: strings, seed: 5}}
- {{id: M1, kind: music, scenes: [3, 3], prompt: piano, seed: 6}}
"""


@pytest.fixture(scope="module", params=list(RATES))
def rendered(request, prefect_api, tmp_path_factory):
    """One reel of four shots per frame rate through the flow with a given sheet (a music cue across
    three cuts, a muted cue, a cue at -4.5 dB): (label, version folder, provenance document)."""
    from audiox_core.video.lavfi_reel import make_reel
    from flows.soundtrack import soundtrack

    label = request.param
    fps = RATES[label]
    base = tmp_path_factory.mktemp(f"daw{label}")
    reel = make_reel(base / f"daw{label.replace('.', '')}.mp4", shot_frames=(30, 24, 36, 30), fps=fps, size=(160, 90))
    sheet = base / "cues.yaml"
    sheet.write_text(SHEET.format(reel=reel.path.stem, fps=f"{fps.numerator}/{fps.denominator}"))
    mp = pytest.MonkeyPatch()
    mp.setenv("AUDIOX_HOME", str(base / "home"))
    mp.delenv("AUDIOX_DB_URL", raising=False)
    try:
        soundtrack(str(reel.path), str(base / "out"), {"steps": 2, "start_timecode": START[label]}, cues=str(sheet))
    finally:
        mp.undo()
    folder = base / "out" / reel_folder(str(reel.path))
    yield label, folder, json.loads((folder / "provenance.json").read_text())


def _spans(document: dict) -> dict[tuple[int, str], int]:
    return {(g["scene_index"], g["kind"]): g["span_start"] for g in document["generations"]}


def _start_sample(label: str) -> int:
    fps = RATES[label]
    return round(Fraction(parse_timecode(START[label], fps, "start")) / fps * MIX_RATE)


@pytest.mark.integration
def test_otio_gives_every_cue_at_its_mix_position_on_its_track(rendered) -> None:
    label, folder, document = rendered
    tl = otio.adapters.read_from_file(str(folder / "soundtrack.otio"))
    fps = RATES[label]
    assert tl.global_start_time.value == parse_timecode(START[label], fps, "start")
    assert abs(tl.global_start_time.rate - float(fps)) < 1e-9
    assert [t.name for t in tl.tracks] == ["Picture", "Dialogue", "Foley", "Music"]
    spans = _spans(document)
    (dialogue,) = tl.tracks[1].find_clips()
    assert dialogue.media_reference.target_url == "stems/dialogue.wav"
    seen = {}
    for track in tl.tracks[2:]:
        for clip, origin, _ in clip_origins(track):
            facts = clip.metadata[NAMESPACE]
            seen[facts["cue_id"]] = (track.name, clip, facts)
            assert facts["kind"] == track.name.lower()
            if not facts["muted"]:
                assert abs(origin - spans[(facts["scene"], facts["kind"])]) < 1e-3
    assert set(seen) == {"F0", "F1", "F2", "F3", "M0", "M1"}
    muted = seen["F2"][1]
    assert not muted.enabled and isinstance(muted.media_reference, otio.schema.MissingReference)
    assert seen["F1"][2]["gain_db"] == -4.5 and seen["F0"][2]["gain_db"] == 0.0
    keys = {g["key"] for g in document["generations"]}
    for cue_id in ("F0", "F1", "F3", "M0", "M1"):
        facts = seen[cue_id][2]
        assert facts["generation_key"] in keys and facts["checkpoint_sha256"] == document["model"]["checkpoint_sha256"]
        assert facts["prompt"] and isinstance(facts["seed"], int)
        assert (folder / seen[cue_id][1].media_reference.target_url).is_file()
    music = tl.tracks[3]
    crossfades = [t for t in music if isinstance(t, otio.schema.Transition) and t.name == "crossfade"]
    assert len(crossfades) == 1  # M0 into M1, where the mix crossfades them
    assert [m.metadata[NAMESPACE]["scene"] for m in tl.tracks.markers] == [0, 1, 2, 3]
    assert [m.marked_range.start_time.value for m in tl.tracks.markers] == [
        s["start_frame"] for s in document["scenes"]
    ]


@pytest.mark.integration
def test_otio_converts_with_otios_own_edl_and_fcp_xml_adapters(rendered) -> None:
    label, folder, _ = rendered
    tl = otio.adapters.read_from_file(str(folder / "soundtrack.otio"))
    xml = otio.adapters.write_to_string(tl, "fcp_xml")
    back = otio.adapters.read_from_string(xml, "fcp_xml")
    assert [len(list(t.find_clips())) for t in back.tracks] == [len(list(t.find_clips())) for t in tl.tracks]
    # CMX 3600 holds one picture and at most two audio tracks (OTIO's adapter writes the picture's events)
    edl_timeline = otio.schema.Timeline(tl.name, global_start_time=tl.global_start_time)
    for track in (tl.tracks[0], tl.tracks[2]):
        edl_timeline.tracks.append(track.deepcopy())
    edl = otio.adapters.write_to_string(edl_timeline, "cmx_3600")
    events = otio.adapters.read_from_string(edl, "cmx_3600", rate=float(RATES[label]))
    (picture,) = events.find_clips()
    assert picture.name == tl.tracks[0][0].name
    assert picture.source_range.duration.value == tl.tracks[0][0].source_range.duration.value


@pytest.mark.integration
def test_aaf_reads_back_with_the_same_clips_and_the_cue_samples_embedded(rendered) -> None:
    label, folder, document = rendered
    spans = _spans(document)
    with aaf2.open(str(folder / "soundtrack.aaf")) as f:
        comp = next(f.content.toplevel())
        slots = {s.name: s for s in comp.slots}
        assert {"Dialogue", "Foley", "Music", "TC"} <= set(slots)
        tc = slots["TC"].segment
        assert tc.start == parse_timecode(START[label], RATES[label], "start")
        assert tc.drop == (label == "29.97DF")
        essence = {}
        for mob in f.content.sourcemobs():
            if mob.essence is not None:
                essence[mob.name.removesuffix(".PHYS")] = mob.essence.open("r").read()
    via_adapter = otio.adapters.read_from_file(str(folder / "soundtrack.aaf"), adapter_name="AAF")
    placed, lengths = {}, {}
    for track in via_adapter.tracks:
        for clip, origin, _ in clip_origins(track):
            placed[clip.name] = origin
            lengths[clip.name] = clip.source_range.duration.rescaled_to(MIX_RATE).value
    tl = otio.adapters.read_from_file(str(folder / "soundtrack.otio"))
    for track in tl.tracks[2:]:
        for clip, origin, _ in clip_origins(track):
            facts = clip.metadata[NAMESPACE]
            if facts["muted"]:
                assert clip.name not in placed  # no audio to embed: the AAF keeps its place empty
                continue
            assert placed[clip.name] == spans[(facts["scene"], facts["kind"])] == round(origin)
            assert lengths[clip.name] == round(clip.source_range.duration.rescaled_to(MIX_RATE).value)
            assert essence[clip.name] == wav_data(folder / clip.media_reference.target_url)
    assert essence["dialogue"] == wav_data(folder / "stems/dialogue.wav")


@pytest.mark.integration
def test_stems_mix_and_cues_are_broadcast_wavs_spotted_to_the_start(rendered) -> None:
    label, folder, document = rendered
    start = _start_sample(label)
    for name in ("mix.wav", "stems/foley.wav", "stems/music.wav", "stems/dialogue.wav", "stems/m_and_e.wav"):
        assert ffprobe_tags(folder / name)["time_reference"] == str(start), name
    mix = read_bext(folder / "mix.wav")
    recorded = json.loads((folder / "loudness.json").read_text())["outputs"]["mix"]
    assert mix.loudness.integrated_lufs == pytest.approx(recorded["integrated_lufs"], abs=0.01)
    for (scene, kind), span_start in _spans(document).items():
        assert ffprobe_tags(folder / f"cues/scene{scene:04d}_{kind}.wav")["time_reference"] == str(start + span_start)
    effects = read_wav(folder / "stems/foley.wav")[0].astype(np.float64) + read_wav(folder / "stems/music.wav")[0]
    assert np.abs(effects - read_wav(folder / "stems/m_and_e.wav")[0]).max() < 3e-7  # the broadcast WAVs still sum
    outputs = {o["uri"].rsplit("/", 1)[-1]: o for o in document["outputs"]}
    assert {"soundtrack.otio", "soundtrack.aaf"} <= set(outputs)
    page = (folder / "review.html").read_text()
    assert "<th>Into the DAW</th>" in page and page.count('href="soundtrack.aaf"') == 2  # the row and the file list


# --- export ----------------------------------------------------------------------------------------------


def _export(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    return subprocess.run(
        [sys.executable, "-m", "cli", "export", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.integration
@pytest.mark.parametrize("rendered", ["25"], indirect=True)
def test_export_writes_the_package_again_at_another_start_and_naming(rendered, tmp_path: Path) -> None:
    label, folder, document = rendered
    target = tmp_path / "package"
    done = _export(
        str(folder),
        "--to",
        str(target),
        "--start",
        "09:59:50:00",
        "--stem-names",
        "{reel}-{stem}-{fps}",
        cwd=Path.cwd(),
    )
    assert done.returncode == 0, done.stderr
    reel = folder.name.rsplit("-", 1)[0]
    names = {p.name for p in target.iterdir() if p.is_file()}
    assert {f"{reel}-{code}-25.wav" for code in ("FXStem", "MXStem", "DIAStem", "ME", "PM")} <= names
    start = (9 * 3600 + 59 * 60 + 50) * MIX_RATE
    assert ffprobe_tags(target / f"{reel}-PM-25.wav")["time_reference"] == str(start)
    assert wav_data(target / f"{reel}-PM-25.wav") == wav_data(folder / "mix.wav")
    for (scene, kind), span_start in _spans(document).items():
        cue = target / f"cues/scene{scene:04d}_{kind}.wav"
        assert ffprobe_tags(cue)["time_reference"] == str(start + span_start)
    tl = otio.adapters.read_from_file(str(target / "soundtrack.otio"))
    assert tl.global_start_time.value == 9 * 3600 * 25 + 59 * 60 * 25 + 50 * 25
    for clip in tl.find_clips():
        if (
            clip.enabled
            and isinstance(clip.media_reference, otio.schema.ExternalReference)
            and clip.name != Path(document["source"]["uri"]).name
        ):
            assert (target / clip.media_reference.target_url).is_file(), clip.media_reference.target_url
    assert (target / "soundtrack.aaf").stat().st_size > 0
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # the reel folder is untouched


@pytest.mark.integration
@pytest.mark.parametrize("rendered", ["29.97DF"], indirect=True)  # drop frame: the most ways to be wrong
def test_export_refuses_bad_input_in_one_line_and_writes_nothing(rendered, tmp_path: Path) -> None:
    label, folder, _ = rendered
    incomplete = tmp_path / "incomplete"
    shutil.copytree(folder, incomplete)
    (incomplete / "cues/scene0001_foley.wav").unlink()
    mixed = tmp_path / "mixed"
    shutil.copytree(folder, mixed)
    other = mixed / "cues/scene0001_foley.wav"
    data = bytearray(other.read_bytes())
    data[-3:] = b"\x01\x02\x03"  # another version's take of this cue: same length, other samples
    other.write_bytes(bytes(data))
    cases = [
        ([str(incomplete)], "incomplete: cues/scene0001_foley.wav"),
        ([str(mixed)], "scene0001_foley.wav is not the file provenance.json records"),
        ([str(folder), "--start", "01:00"], "--start '01:00' is not one of HH:MM:SS:FF"),
        ([str(folder), "--start", "01:01:00;00"], "skips frames 00–01 of minute 1"),
        ([str(folder), "--stem-names", "{reel}/{stem}"], "path separator"),
        ([str(folder), "--stem-names", "{reel}_{take}_{stem}"], "unknown field {take}"),
        ([str(tmp_path / "nowhere")], "no such reel folder"),
        (["s3://bucket/out/reel-0123456789"], "export reads a local version folder"),
    ]
    for args, why in cases:
        target = tmp_path / "out"
        done = _export(*args, "--to", str(target), cwd=tmp_path)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 1 and len(lines) == 1 and why in lines[0], (args, done.stderr)
        assert lines[0].startswith("error: ")
        assert not target.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_a_reel_with_a_start_beyond_the_picture_rate_says_which(tmp_path: Path) -> None:
    reel = long_reel(Fraction(25), hours=0.01)
    bad = replace(reel, settings=DawSettings(start_timecode="01:00:00:25"))
    with pytest.raises(InputError, match="start_timecode '01:00:00:25': beyond 23:59:59:24"):
        timeline(bad)


def test_muted_and_crossfaded_cues_on_the_music_track(tmp_path: Path) -> None:
    reel: DawReel = long_reel(Fraction(25), hours=0.05)
    tl = timeline(reel)
    music = [t for t in tl.tracks if t.name.startswith("Music")]
    assert len(music) == 1
    items = list(music[0])
    clips = [i for i in items if isinstance(i, otio.schema.Clip)]
    assert [c.enabled for c in clips][:3] == [True, False, True]
    crossfades = [i for i in items if isinstance(i, otio.schema.Transition) and i.name == "crossfade"]
    assert len(crossfades) == len(clips) - 1


@pytest.mark.integration
def test_a_run_whose_start_timecode_the_picture_cannot_show_fails_in_one_line(
    prefect_api, reel, home, tmp_path
) -> None:
    from sqlalchemy import select

    from db.models import Run
    from db.session import database_url, sessions
    from flows.soundtrack import soundtrack

    out = tmp_path / "out"
    with pytest.raises(InputError, match=r"^start_timecode '01:00:00:25': beyond 23:59:59:24 at 25.000 fps$"):
        soundtrack(str(reel.path), str(out), {"steps": 2, "start_timecode": "01:00:00:25"})
    assert not (out / reel_folder(str(reel.path))).exists()
    with sessions(database_url(home))() as s:
        run = s.scalars(select(Run).order_by(Run.id.desc())).first()
    assert run.status == "failed" and "start_timecode '01:00:00:25'" in run.error
